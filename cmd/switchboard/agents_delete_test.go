package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// spoofed makes an admin request that claims, in X-Forwarded-For, to come from elsewhere.
func spoofed(t *testing.T, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", "203.0.113.66")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDeleteAgentEndsItsSessionsEverywhere: DELETE /api/admin/agents/{id} on one instance ends
// the agent's softphone session on another at once, removes its presence and token, and is
// audited with the admin's own address, whatever X-Forwarded-For says; an unknown agent is
// 404 and leaves no audit entry.
func TestDeleteAgentEndsItsSessionsEverywhere(t *testing.T) {
	ns := redistest.Namespace(t)
	vars := map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": ns}
	a, b := start(t, vars), start(t, vars)
	if code := spoofed(t, http.MethodPut, a.base+"/api/admin/agents/ann", `{"name":"Ann"}`); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var out map[string]any
	if code := request(t, http.MethodPut, a.base+"/api/admin/agents/ann", adminToken, map[string]any{"rotate_token": true}, &out); code != http.StatusOK {
		t.Fatalf("rotate: %d", code)
	}
	token := out["token"].(string)
	ann := softphone(t, b.base, token)

	if code := spoofed(t, http.MethodDelete, a.base+"/api/admin/agents/ann", ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if m := expectMessage(t, ann, "revoked", func(m agentsim.SoftphoneMessage) bool { return m.Type == "error" }); m.Code != "revoked" {
		t.Fatalf("the deleted agent's session: %s", m.Raw)
	}
	if code := request(t, http.MethodGet, b.base+"/api/calls", token, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("the deleted agent's token: %d", code)
	}
	var list struct {
		Agents []any `json:"agents"`
	}
	if code := request(t, http.MethodGet, b.base+"/api/admin/agents", adminToken, nil, &list); code != 200 || len(list.Agents) != 0 {
		t.Fatalf("agents after delete: %d %+v", code, list)
	}
	if code := spoofed(t, http.MethodDelete, a.base+"/api/admin/agents/ann", ""); code != http.StatusNotFound {
		t.Fatalf("delete again: %d", code)
	}
	if code := spoofed(t, http.MethodDelete, a.base+"/api/admin/agents/Not%20Valid", ""); code != http.StatusNotFound {
		t.Fatalf("delete an invalid id: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := agentdb.New(storetest.Open(t, redistest.URL(t), ns))
	if p, err := st.Presence(ctx, "ann"); err != nil || p.State != agentdb.Offline {
		t.Fatalf("deleted agent's presence: %+v %v", p, err)
	}
	audit, err := st.AuditLog(ctx, 10)
	if err != nil || len(audit) != 3 {
		t.Fatalf("audit log (create, rotate, one delete): %+v %v", audit, err)
	}
	if audit[0].Action != "agent.delete" || audit[0].Target != "ann" {
		t.Fatalf("last audit entry: %+v", audit[0])
	}
	for _, e := range audit {
		if e.Actor != "admin@127.0.0.1" {
			t.Errorf("audit actor %q for %s: want the admin seen from the connection, never X-Forwarded-For", e.Actor, e.Action)
		}
	}
}
