package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

const adminToken = "test-admin-token-0123456789"

type server struct {
	base string
	done chan error
	stop context.CancelFunc
	mu   sync.Mutex
	out  []string // every line it printed so far
}

// printed returns the lines printed so far.
func (s *server) printed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.out)
}

// start runs the server on a free port with env (on top of a test Redis and admin token) and
// waits until it listens.
func start(t *testing.T, env map[string]string) *server {
	t.Helper()
	vars := map[string]string{"REDIS_URL": redistest.URL(t), "SWITCHBOARD_ADMIN_TOKEN": adminToken,
		"SWITCHBOARD_LOG_LEVEL": "warn"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	s := &server{done: make(chan error, 1), stop: cancel}
	go func() {
		s.done <- run(ctx, []string{"switchboard", "-addr", "127.0.0.1:0"}, func(k string) string { return vars[k] }, w, io.Discard)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		s.out = append(s.out, lines.Text())
		if addr, ok := strings.CutPrefix(lines.Text(), "Switchboard listening on "); ok {
			s.base = "http://" + strings.Fields(addr)[0]
			break
		}
	}
	go func() {
		for lines.Scan() {
			s.mu.Lock()
			s.out = append(s.out, lines.Text())
			s.mu.Unlock()
		}
		io.Copy(io.Discard, out)
	}()
	if s.base == "" {
		t.Fatalf("server did not start: %v", <-s.done)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return s
}

func get(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	return send(t, http.MethodGet, url, token, nil)
}

// send makes one request with a bearer token (none if empty) and a JSON body (none if nil),
// and returns the response with its body read.
func send(t *testing.T, method, url, token string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func TestHealthAndReadiness(t *testing.T) {
	s := start(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := get(t, s.base+path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, body := get(t, s.base+"/metrics", ""); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
}

func TestEmbeddedRedisByDefault(t *testing.T) {
	s := start(t, map[string]string{"REDIS_URL": ""})
	if resp, body := get(t, s.base+"/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz on embedded Redis: %d %s", resp.StatusCode, body)
	}
}

func TestInvalidConfigurationIsOneLine(t *testing.T) {
	cases := map[string]map[string]string{
		"addr":                 {"SWITCHBOARD_ADDR": "nonsense"},
		"public":               {"SWITCHBOARD_PUBLIC_URL": "ftp://x"},
		"redis":                {"REDIS_URL": "not a url", "SWITCHBOARD_ADMIN_TOKEN": adminToken},
		"token":                {"SWITCHBOARD_ADMIN_TOKEN": "short"},
		"level":                {"SWITCHBOARD_LOG_LEVEL": "loud"},
		"retention":            {"SWITCHBOARD_RETENTION": "-1h"},
		"stop":                 {"SWITCHBOARD_STOP_DELAY": "-5s"},
		"stop unit":            {"SWITCHBOARD_STOP_DELAY": "5"},
		"reconcile":            {"SWITCHBOARD_RECONCILE_AFTER": "0s"},
		"empty disposition":    {"SWITCHBOARD_DISPOSITIONS": "resolved,,spam"},
		"repeated disposition": {"SWITCHBOARD_DISPOSITIONS": "resolved,spam,Resolved"},
		"long disposition":     {"SWITCHBOARD_DISPOSITIONS": "resolved," + strings.Repeat("x", 41)},
	}
	for name, env := range cases {
		err := run(context.Background(), []string{"switchboard"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%s: bad configuration accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: reason is not one line: %q", name, err)
		}
		if strings.HasSuffix(name, "disposition") && !strings.Contains(err.Error(), "SWITCHBOARD_DISPOSITIONS") {
			t.Errorf("%s: reason does not name the variable: %q", name, err)
		}
	}
}

func TestCallsAPI(t *testing.T) {
	ns := redistest.Namespace(t) // its own keys: the listing of active calls sees only this test's
	s := start(t, map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": ns})
	st := storetest.Open(t, redistest.URL(t), ns)
	id := store.NewCallID()
	ccid := "CA" + strings.Repeat("ab", 16) + id[2:6]
	for i, e := range []call.Event{
		{ID: "q", CallID: id, State: call.Queued, Direction: call.Outbound, From: "+15550100", To: "+15550199"},
		{ID: "r", CallID: id, State: call.Ringing, Carrier: "primary", CarrierCallID: ccid},
	} {
		if i == 1 {
			// The placer claims an attempt before its carrier may report on the call.
			if err := st.ClaimAttempt(context.Background(), id, "primary", 1); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Link(context.Background(), id, "primary", ccid); err != nil {
		t.Fatal(err)
	}

	if resp, _ := get(t, s.base+"/api/calls/"+id, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, s.base+"/api/calls/"+id, "wrong-token-wrong-token"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	if resp, body := get(t, s.base+"/api/calls/CLdoesnotexist", adminToken); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not_found") {
		t.Fatalf("unknown call: %d %s", resp.StatusCode, body)
	}

	resp, body := get(t, s.base+"/api/calls/"+id, adminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get call: %d %s", resp.StatusCode, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"id", "state", "direction", "from", "to", "carrier", "carrier_call_id", "agent", "created_at", "updated_at", "history"} {
		if _, ok := got[field]; !ok {
			t.Errorf("call JSON lacks %q: %s", field, body)
		}
	}
	if got["state"] != "ringing" || got["direction"] != "outbound" || got["carrier_call_id"] != ccid {
		t.Errorf("call JSON: %s", body)
	}
	history := got["history"].([]any)
	if len(history) != 2 || history[1].(map[string]any)["changed"] != true {
		t.Errorf("history: %v", history)
	}

	for _, q := range []string{"?carrier_call_id=" + ccid, "?state=active"} {
		resp, body := get(t, s.base+"/api/calls"+q, adminToken)
		var list struct{ Calls []call.Call }
		json.Unmarshal(body, &list)
		if resp.StatusCode != http.StatusOK || len(list.Calls) == 0 || list.Calls[0].ID != id {
			t.Errorf("GET /api/calls%s: %d %s", q, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, s.base+"/api/calls?state=ringing", adminToken); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unsupported listing: %d", resp.StatusCode)
	}
}

// TestStopDelay: after the first signal the server goes on serving, new connections and
// kept-alive ones, with /readyz failing, for the delay; then it drains and stops. A second
// signal during the delay stops it at once.
func TestStopDelay(t *testing.T) {
	s := start(t, map[string]string{"SWITCHBOARD_STOP_DELAY": "1500ms", "SWITCHBOARD_DRAIN_TIMEOUT": "5s"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	if resp, err := client.Get(s.base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("before the signal: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	signalled := time.Now()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	redistest.Eventually(t, time.Second, "/readyz answering 503 during the delay", func() bool { return readyz(s.base) == http.StatusServiceUnavailable })
	for _, c := range []*http.Client{client, http.DefaultClient} { // kept-alive, then new
		resp, err := c.Get(s.base + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz during the delay: %v %v, want 200", resp, err)
		}
		resp.Body.Close()
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if waited := time.Since(signalled); waited < 1400*time.Millisecond {
			t.Fatalf("stopped %v after the signal, before the 1.5 s delay", waited)
		}
		s.done <- nil // for the cleanup
	case <-time.After(6 * time.Second):
		t.Fatal("the server did not stop after the delay")
	}

	s = start(t, map[string]string{"SWITCHBOARD_STOP_DELAY": "1m"})
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	// The second signal counts as one only once the first was taken: /readyz says so.
	redistest.Eventually(t, time.Second, "the first signal taken", func() bool { return readyz(s.base) == http.StatusServiceUnavailable })
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		s.done <- nil
	case <-time.After(3 * time.Second):
		t.Fatal("a second signal during the delay did not stop the server")
	}
}

// TestTwoStageShutdown: the first signal drains (a request in flight may finish), the second
// stops at once.
func TestTwoStageShutdown(t *testing.T) {
	s := start(t, map[string]string{"SWITCHBOARD_DRAIN_TIMEOUT": "30s"})
	// A request whose headers never finish keeps the server busy, as a slow client would.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
	time.Sleep(50 * time.Millisecond) // let the server read the first bytes: the connection is now active

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-s.done:
		t.Fatalf("first signal stopped the server at once (%v); it must drain", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := http.Get(s.base + "/healthz"); err == nil {
		t.Error("a draining server still accepts new connections")
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(3 * time.Second):
		t.Fatal("second signal did not stop the server")
	}
}

// readyz is the status /readyz answers, or 0 when it does not answer.
func readyz(base string) int {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
