package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

func TestHelpExitsZeroAndEveryVariableIsInTheREADME(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"switchboard", "-h"}, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatalf("-h: %v (main would exit 1)", err)
	}
	vars := regexp.MustCompile(`\((SWITCHBOARD_[A-Z_]+|REDIS_URL)\)`).FindAllStringSubmatch(stderr.String(), -1)
	if len(vars) < 10 {
		t.Fatalf("-h names only %d variables:\n%s", len(vars), stderr.String())
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append(vars, []string{"", "SWITCHBOARD_ADMIN_TOKEN"}) { // the token has no flag
		if !regexp.MustCompile("(?m)^\\| `" + v[1] + "` \\|").Match(readme) {
			t.Errorf("%s is in -h but not in the README's configuration table (a row starting | `%s` |)", v[1], v[1])
		}
	}
}

func TestLandingPageUnknownRoutesAndHEAD(t *testing.T) {
	s := start(t, nil)
	resp, body := get(t, s.base+"/", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, link := range []string{`href="/agent"`, `href="/admin"`, `href="/metrics"`, "docs/"} {
		if !strings.Contains(string(body), link) {
			t.Errorf("landing page lacks %s:\n%s", link, body)
		}
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/no/such/route", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/api/nothing", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "method_not_allowed"},
	} {
		resp, body := send(t, tc.method, s.base+tc.path, "", nil)
		var shape struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if resp.StatusCode != tc.status || json.Unmarshal(body, &shape) != nil || shape.Error.Code != tc.code || shape.Error.Message == "" {
			t.Errorf("%s %s: %d %s, want %d and the API's error shape with code %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.code)
		}
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := send(t, http.MethodHead, s.base+path, "", nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes", path, resp.StatusCode, len(body))
		}
	}
}

func TestBannerPrintsWorkingRequestsAndTheNextStep(t *testing.T) {
	s := start(t, map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": redistest.Namespace(t)}) // no carrier, no agent
	out := bannerUntil(t, s, "next step: add an agent")
	for _, want := range []string{`Bearer $SWITCHBOARD_ADMIN_TOKEN`, "next step: add a carrier", "next step: add an agent", "/api/admin/agents/ann"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, adminToken) || strings.Contains(out, "<admin token>") {
		t.Errorf("banner prints a configured token, or a placeholder:\n%s", out)
	}
	// The printed next step works as printed, with the token the shell variable holds.
	if code := request(t, http.MethodPut, s.base+"/api/admin/agents/ann", adminToken, map[string]string{"name": "Ann"}, nil); code != http.StatusCreated {
		t.Errorf("the banner's agent request answers %d", code)
	}
}

// bannerUntil waits until the server has printed a line containing last, and returns all it
// printed: the banner goes on after the line the start helper waits for.
func bannerUntil(t *testing.T, s *server, last string) string {
	t.Helper()
	redistest.Eventually(t, 10*time.Second, "the banner to print "+last, func() bool {
		return strings.Contains(strings.Join(s.printed(), "\n"), last)
	})
	return strings.Join(s.printed(), "\n")
}

func TestBannerPrintsTheGeneratedToken(t *testing.T) {
	s := start(t, map[string]string{"REDIS_URL": "", "SWITCHBOARD_ADMIN_TOKEN": ""})
	out := bannerUntil(t, s, "Authorization")
	m := regexp.MustCompile(`admin token is ([0-9a-f]{48})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no generated token in the banner:\n%s", out)
	}
	if !strings.Contains(out, `"Authorization: Bearer `+m[1]+`"`) {
		t.Errorf("the banner's curl does not carry the generated token:\n%s", out)
	}
}

func TestSharedRedisNeedsAnAdminToken(t *testing.T) {
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	err := run(context.Background(), []string{"switchboard", "-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_ADMIN_TOKEN") {
		t.Fatalf("REDIS_URL without a token: %v, want a refusal naming SWITCHBOARD_ADMIN_TOKEN", err)
	}
}

func TestPlainHTTPPublicURLWarns(t *testing.T) {
	for url, warns := range map[string]bool{
		"http://voice.example.com": true, "https://voice.example.com": false,
		"http://localhost:8080": false, "http://127.0.0.1:8080": false,
	} {
		var logs bytes.Buffer
		warnPlainHTTP(url, slog.New(slog.NewTextHandler(&logs, nil)))
		if got := strings.Contains(logs.String(), "not https"); got != warns {
			t.Errorf("%s: warned %v, want %v: %s", url, got, warns, logs.String())
		}
	}
}

func TestDeploymentSettings(t *testing.T) {
	for _, tc := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{"SWITCHBOARD_REDIS_MIN_REPLICAS": "auto"}, true},
		{map[string]string{"SWITCHBOARD_REDIS_MIN_REPLICAS": "2"}, true},
		{map[string]string{"SWITCHBOARD_REDIS_MIN_REPLICAS": "-1"}, false},
		{map[string]string{"SWITCHBOARD_REDIS_MIN_REPLICAS": "one"}, false},
		{map[string]string{"SWITCHBOARD_ICE_SERVERS": `[{"urls":"stun:stun.example.com:3478"}]`}, true},
		{map[string]string{"SWITCHBOARD_ICE_SERVERS": `[{"urls":["turn:t.example.com:3478?transport=udp","turns:t.example.com:443"],"username":"u","credential":"p"}]`}, true},
		{map[string]string{"SWITCHBOARD_ICE_SERVERS": `[{"urls":"http://t.example.com"}]`}, false},
		{map[string]string{"SWITCHBOARD_ICE_SERVERS": `[{"username":"u"}]`}, false},
		{map[string]string{"SWITCHBOARD_ICE_SERVERS": `turn:t.example.com`}, false},
	} {
		_, err := parseConfig([]string{"switchboard"}, func(k string) string { return tc.env[k] }, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok %v", tc.env, err, tc.ok)
		}
	}
}

func TestSoftphoneIsToldTheICEServers(t *testing.T) {
	servers := `[{"urls":"turn:turn.example.com:3478","username":"agent","credential":"secret"}]`
	s := start(t, map[string]string{"SWITCHBOARD_ICE_SERVERS": servers, "SWITCHBOARD_REDIS_NAMESPACE": redistest.Namespace(t)})
	p := softphone(t, s.base, createAgent(t, s.base, "ice"))
	i := slices.IndexFunc(p.Messages(), func(m agentsim.SoftphoneMessage) bool { return m.Type == "welcome" })
	if i < 0 {
		t.Fatal("no welcome")
	}
	var got struct {
		ICEServers json.RawMessage `json:"ice_servers"`
	}
	if err := json.Unmarshal(p.Messages()[i].Raw, &got); err != nil || string(got.ICEServers) != servers {
		t.Errorf("welcome carries ice_servers %s, want %s", got.ICEServers, servers)
	}
	// Before sign-in nobody sees TURN credentials: the page itself does not carry them.
	if _, body := get(t, s.base+"/agent", ""); strings.Contains(string(body), "secret") {
		t.Error("the softphone page carries the TURN credential")
	}
}
