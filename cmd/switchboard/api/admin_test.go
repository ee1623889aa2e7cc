package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/statsdb"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

const token = "api-test-token-0123456789"

type fixture struct {
	srv      *httptest.Server
	st       *store.Redis
	breakers *dispatch.Breakers
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rig := newRouteRig(t, redistest.URL(t))
	st, log := rig.rs, rig.log
	reg := carrier.NewRegistry(carrierdb.New(st), carrier.NewHTTPClient(), log)
	breakers := dispatch.NewBreakers(carrierdb.New(st), reg, dispatch.BreakerOptions{Log: log})
	router := dispatch.NewRouter(reg, breakers, nil)
	placer := dispatch.NewPlacer(dispatch.PlacerDeps{Store: carrierdb.New(st), Registry: reg, Breakers: breakers, Router: router,
		PublicURL: "http://127.0.0.1:9", Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { breakers.Run(ctx) })
	wg.Go(func() { placer.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() }) // after the server closes, before the store does
	srv := serve(t, Deps{Store: st, AdminToken: token, Log: log, Carriers: reg, Breakers: breakers, Router: router, History: st, Stats: statsdb.New(st),
		Placer: placer, AdminLog: carrierdb.New(st)})
	return &fixture{srv: srv, st: st, breakers: breakers}
}

func (f *fixture) do(t *testing.T, method, path string, body any) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	return send(t, req, token)
}

const secret = "sekrit-auth-token-0123456789"

func twilioCarrier(apiURL string, priority int) map[string]any {
	return map[string]any{"kind": "twilio", "api_url": apiURL, "account_sid": "AC0123456789abcdef0123456789abcdef",
		"auth_token": secret, "from": "+15550100", "priority": priority, "enabled": true,
		"breaker": map[string]any{"failure_threshold": 2, "callback_deadline": "2s"}}
}

func TestCarriersAdminKeepsSecretsWriteOnly(t *testing.T) {
	f := newFixture(t)
	code, got, raw := f.do(t, "PUT", "/api/admin/carriers/primary", twilioCarrier("http://127.0.0.1:1", 0))
	if code != http.StatusCreated || got["has_auth_token"] != true || strings.Contains(raw, secret) {
		t.Fatalf("create: %d %s", code, raw)
	}
	if b := got["breaker"].(map[string]any); b["failure_threshold"] != 2.0 || b["window"] != "1m0s" || b["callback_deadline"] != "2s" {
		t.Fatalf("breaker settings: %v", b)
	}
	// An update without the secret keeps it.
	update := twilioCarrier("http://127.0.0.1:1", 3)
	delete(update, "auth_token")
	if code, got, raw = f.do(t, "PUT", "/api/admin/carriers/primary", update); code != http.StatusOK || got["priority"] != 3.0 || got["has_auth_token"] != true {
		t.Fatalf("update: %d %s", code, raw)
	}
	for _, path := range []string{"/api/admin/carriers", "/api/admin/carriers/primary", "/api/admin/audit"} {
		code, _, raw := f.do(t, "GET", path, nil)
		if code != http.StatusOK || strings.Contains(raw, secret) || !strings.Contains(raw, "primary") {
			t.Fatalf("GET %s: %d %s", path, code, raw)
		}
	}
	_, audit, _ := f.do(t, "GET", "/api/admin/audit", nil)
	entries := audit["entries"].([]any)
	if len(entries) != 2 || entries[0].(map[string]any)["action"] != "carrier.update" ||
		!strings.HasPrefix(entries[0].(map[string]any)["actor"].(string), "admin@127.0.0.1") {
		t.Fatalf("audit: %v", entries)
	}

	// Every problem at once, by field.
	bad := map[string]any{"kind": "twilio", "from": "555", "priority": -1, "breaker": map[string]any{"window": "1ms"}}
	code, got, raw = f.do(t, "PUT", "/api/admin/carriers/Bad_ID", bad)
	if code != http.StatusBadRequest {
		t.Fatalf("invalid: %d %s", code, raw)
	}
	fields := map[string]bool{}
	for _, fe := range got["error"].(map[string]any)["fields"].([]any) {
		fields[fe.(map[string]any)["field"].(string)] = true
	}
	for _, want := range []string{"id", "account_sid", "auth_token", "from", "priority", "breaker.window"} {
		if !fields[want] {
			t.Errorf("no error for %s: %s", want, raw)
		}
	}
	if code, _, raw := f.do(t, "PUT", "/api/admin/carriers/x", `{"kind":"twilio","auth_token":"`+secret+`","bogus":1}`); code != http.StatusBadRequest || strings.Contains(raw, secret) {
		t.Fatalf("unknown field: %d %s", code, raw)
	}
	if code, _, raw := f.do(t, "PUT", "/api/admin/carriers/x", `{"auth_token":12}`); code != http.StatusBadRequest || strings.Contains(raw, "12") && !strings.Contains(raw, "auth_token") {
		t.Fatalf("wrong type: %d %s", code, raw)
	}
	if code, _, _ := f.do(t, "DELETE", "/api/admin/carriers/primary", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.do(t, "GET", "/api/admin/carriers/primary", nil); code != http.StatusNotFound {
		t.Fatalf("get deleted: %d", code)
	}
	if code, _, _ := f.do(t, "DELETE", "/api/admin/carriers/primary", nil); code != http.StatusNotFound {
		t.Fatalf("delete again: %d", code)
	}
}

func TestBreakerForceAndRouteDryRun(t *testing.T) {
	f := newFixture(t)
	f.do(t, "PUT", "/api/admin/carriers/primary", twilioCarrier("http://127.0.0.1:1", 0))
	f.do(t, "PUT", "/api/admin/carriers/secondary", twilioCarrier("http://127.0.0.1:2", 1))

	code, got, raw := f.do(t, "GET", "/api/admin/route?to=%2B15551234567", nil)
	if code != http.StatusOK || got["carrier"] != "primary" || len(got["candidates"].([]any)) != 2 {
		t.Fatalf("route: %d %s", code, raw)
	}
	if code, _, _ := f.do(t, "GET", "/api/admin/route?to=5551234", nil); code != http.StatusBadRequest {
		t.Fatalf("bad number: %d", code)
	}

	code, got, raw = f.do(t, "POST", "/api/admin/carriers/primary/breaker", map[string]string{"state": "open"})
	if code != http.StatusOK || got["force"] != "open" || got["state"] != "open" {
		t.Fatalf("drain: %d %s", code, raw)
	}
	_, got, raw = f.do(t, "GET", "/api/admin/route?to=%2B15551234567", nil)
	skipped := got["skipped"].([]any)
	if got["carrier"] != "secondary" || len(skipped) != 1 || !strings.Contains(skipped[0].(map[string]any)["reason"].(string), "forced open") {
		t.Fatalf("route while drained: %s", raw)
	}
	if code, _, _ := f.do(t, "POST", "/api/admin/carriers/primary/breaker", map[string]string{"state": "shut"}); code != http.StatusBadRequest {
		t.Fatalf("bad state: %d", code)
	}
	if code, _, _ := f.do(t, "POST", "/api/admin/carriers/nope/breaker", map[string]string{"state": "open"}); code != http.StatusNotFound {
		t.Fatalf("unknown carrier: %d", code)
	}
	f.do(t, "POST", "/api/admin/carriers/primary/breaker", map[string]string{"state": "auto"})
	code, got, raw = f.do(t, "GET", "/api/admin/carriers/primary/breaker", nil)
	if code != http.StatusOK || got["force"] != "auto" || got["state"] != "closed" || got["shared"] != true {
		t.Fatalf("breaker: %d %s", code, raw)
	}
	_, got, _ = f.do(t, "GET", "/api/admin/breakers", nil)
	if len(got["breakers"].([]any)) != 2 {
		t.Fatalf("breakers: %v", got)
	}
	_, audit, _ := f.do(t, "GET", "/api/admin/audit?limit=2", nil)
	if e := audit["entries"].([]any); len(e) != 2 || e[0].(map[string]any)["detail"] != "auto" || e[1].(map[string]any)["detail"] != "open" {
		t.Fatalf("audit: %v", e)
	}
}

// A Twilio-compatible carrier that accepts or fails every call.
func fakeCarrier(t *testing.T, status int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		if status == http.StatusCreated {
			w.Write([]byte(`{"sid":"CA` + strings.Repeat("0", 31) + `1","status":"queued"}`))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestPlaceCall(t *testing.T) {
	f := newFixture(t)
	if code, _, raw := f.do(t, "POST", "/api/calls", map[string]string{"to": "+15551234567"}); code != http.StatusServiceUnavailable || !strings.Contains(raw, `"state":"failed"`) {
		t.Fatalf("no carriers: %d %s", code, raw)
	}
	f.do(t, "PUT", "/api/admin/carriers/primary", twilioCarrier(fakeCarrier(t, 503).URL, 0))
	f.do(t, "PUT", "/api/admin/carriers/secondary", twilioCarrier(fakeCarrier(t, 201).URL, 1))
	code, got, raw := f.do(t, "POST", "/api/calls", map[string]string{"to": "+15551234567", "agent": "ann"})
	if code != http.StatusCreated || got["carrier"] != "secondary" || got["agent"] != "ann" || got["direction"] != "outbound" {
		t.Fatalf("place: %d %s", code, raw)
	}
	if !strings.Contains(raw, "primary: http 503 → next") || !strings.Contains(raw, "accepted by secondary") {
		t.Fatalf("history lacks the attempts: %s", raw)
	}
	if code, _, _ := f.do(t, "POST", "/api/calls", map[string]string{"to": "12"}); code != http.StatusBadRequest {
		t.Fatalf("bad number: %d", code)
	}
	redistest.Eventually(t, 3*time.Second, "a failover event", func() bool {
		_, ev, raw := f.do(t, "GET", "/api/admin/events", nil)
		evs, _ := ev["events"].([]any)
		return len(evs) > 0 && strings.Contains(raw, `"kind":"failover"`)
	})
}

func TestAdminPage(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-testid="carriers-table"`) ||
		resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("/admin: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") {
		t.Errorf("the console's CSP allows inline code: %s", csp)
	}
	if strings.Contains(string(body), "<script>") || strings.Contains(string(body), "<style>") {
		t.Error("the console page has inline script or style, which its CSP refuses")
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/admin/carriers", nil)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin API without a token: %d", resp.StatusCode)
	}
}

// The console's files: each script and style sheet the page names is served with its type;
// nothing else is (the page itself only at /admin, no other file of the package).
func TestConsoleFiles(t *testing.T) {
	f := newFixture(t)
	get := func(path string) (int, string, string) {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	_, _, page := get("/admin")
	names := regexp.MustCompile(`(?:src|href)="/admin/([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(names) < 3 {
		t.Fatalf("the page names %d files", len(names))
	}
	for _, m := range names {
		code, ctype, body := get("/admin/" + m[1])
		want := map[string]string{".js": "text/javascript", ".css": "text/css"}[path.Ext(m[1])]
		if code != http.StatusOK || want == "" || !strings.HasPrefix(ctype, want) || body == "" {
			t.Errorf("/admin/%s: %d %q (%d bytes)", m[1], code, ctype, len(body))
		}
	}
	for _, p := range []string{"/admin/admin.html", "/admin/nothing.js", "/admin/..%2fadmin_page.go", "/admin/static"} {
		if code, _, _ := get(p); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}
