package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/statsdb"
)

// TestRolesAndWhoAmI: the admin sets an agent's role (validated, audited, shown); /api/me says
// who each token is; admin-only routes answer 403 to a supervisor's and an agent's valid
// tokens and 401 to anything else; a rotated token is refused at once.
func TestRolesAndWhoAmI(t *testing.T) {
	rig := newRouteRig(t, redistest.URL(t))
	rs, st, log, ctx := rig.rs, rig.st, rig.log, context.Background()
	reg := carrier.NewRegistry(carrierdb.New(rs), nil, log)
	srv := serve(t, Deps{Store: st, AdminToken: token, Log: log, Agents: st, Carriers: reg, AdminLog: carrierdb.New(rs),
		History: rs, Stats: statsdb.New(rs)})

	do := func(method, path, bearer string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		code, out, _ := send(t, req, bearer)
		return code, out
	}

	code, got := do("PUT", "/api/admin/agents/sue", token, map[string]any{"name": "Sue", "role": "supervisor"})
	if code != http.StatusCreated || got["agent"].(map[string]any)["role"] != "supervisor" {
		t.Fatalf("create a supervisor: %d %v", code, got)
	}
	supToken := got["token"].(string)
	code, got = do("PUT", "/api/admin/agents/ann", token, map[string]any{"name": "Ann"})
	if code != http.StatusCreated || got["agent"].(map[string]any)["role"] != "agent" {
		t.Fatalf("create an agent: %d %v", code, got)
	}
	annToken := got["token"].(string)
	code, got = do("PUT", "/api/admin/agents/ann", token, map[string]any{"name": "Ann", "role": "boss"})
	if fields, _ := got["error"].(map[string]any)["fields"].([]any); code != http.StatusBadRequest || len(fields) != 1 ||
		fields[0].(map[string]any)["field"] != "role" {
		t.Fatalf("an unknown role: %d %v", code, got)
	}
	if code, got = do("GET", "/api/admin/agents", token, nil); code != 200 {
		t.Fatalf("list: %d %v", code, got)
	}
	roles := map[string]any{}
	for _, a := range got["agents"].([]any) {
		roles[a.(map[string]any)["id"].(string)] = a.(map[string]any)["role"]
	}
	if roles["sue"] != "supervisor" || roles["ann"] != "agent" {
		t.Fatalf("roles listed: %v", roles)
	}
	audit, err := rs.AuditLog(ctx, 10)
	if err != nil || len(audit) != 2 || audit[1].Detail != "created as Sue; role supervisor" {
		t.Fatalf("audit: %+v %v", audit, err)
	}

	for _, c := range []struct {
		bearer string
		want   map[string]any
	}{
		{token, map[string]any{"role": "admin"}},
		{supToken, map[string]any{"role": "supervisor", "id": "sue", "name": "Sue"}},
		{annToken, map[string]any{"role": "agent", "id": "ann", "name": "Ann"}},
	} {
		code, got := do("GET", "/api/me", c.bearer, nil)
		if code != 200 || len(got) != len(c.want) {
			t.Errorf("me: %d %v, want %v", code, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("me: %v, want %v", got, c.want)
			}
		}
	}

	for _, path := range []string{"/api/admin/carriers", "/api/admin/agents", "/api/admin/audit"} {
		for bearer, want := range map[string]int{token: 200, supToken: 403, annToken: 403, "nobody.0123": 401, "": 401} {
			if code, got := do("GET", path, bearer, nil); code != want {
				t.Errorf("GET %s as %.8q: %d %v, want %d", path, bearer, code, got, want)
			}
		}
	}

	// History, export and charts are staff's: the admin's and supervisors'.
	for _, path := range []string{"/api/admin/cdr?format=csv", "/api/admin/cdr", "/api/admin/stats"} {
		for bearer, want := range map[string]int{token: 200, supToken: 200, annToken: 403, "nobody.0123": 401} {
			if code, got := do("GET", path, bearer, nil); code != want {
				t.Errorf("GET %s as %.8q: %d %v, want %d", path, bearer, code, got, want)
			}
		}
	}

	// A rotation takes the old token away at once, from every route.
	code, got = do("PUT", "/api/admin/agents/sue", token, map[string]any{"name": "Sue", "rotate_token": true})
	if code != 200 || got["agent"].(map[string]any)["role"] != "supervisor" {
		t.Fatalf("rotate: %d %v", code, got)
	}
	if code, _ := do("GET", "/api/me", supToken, nil); code != http.StatusUnauthorized {
		t.Fatalf("the rotated-out token: %d, want 401", code)
	}
	// Demoted, the new token is an agent's.
	if code, _ := do("PUT", "/api/admin/agents/sue", token, map[string]any{"name": "Sue", "role": "agent"}); code != 200 {
		t.Fatal(code)
	}
	if code, got := do("GET", "/api/me", got["token"].(string), nil); code != 200 || got["role"] != "agent" {
		t.Fatalf("demoted: %d %v", code, got)
	}
}
