package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

// createSupervisor creates a supervisor through the admin API and returns its token.
func createSupervisor(t *testing.T, base, id string) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
		Agent struct {
			Role string `json:"role"`
		} `json:"agent"`
	}
	if code := request(t, http.MethodPut, base+"/api/admin/agents/"+id, adminToken,
		map[string]string{"name": "Supervisor " + id, "role": "supervisor"}, &out); code != http.StatusCreated || out.Agent.Role != "supervisor" {
		t.Fatalf("create supervisor %s: %d %+v", id, code, out)
	}
	return out.Token
}

// signInConsole opens the console at base with token and waits for the wallboard's first floor.
func signInConsole(t *testing.T, p page, base, token string) {
	t.Helper()
	p.do("open the console", chromedp.Navigate(base+"/admin#wallboard"))
	p.do("sign in", chromedp.SendKeys(tid("token-input"), token), chromedp.Click(tid("token-save")))
	p.wait("the wallboard", visible("wallboard"))
	p.wait("the first floor", `document.querySelector('[data-testid="status"]').textContent.startsWith('live')`)
}

// TestBrowserWallboardShowsStatesQueueAndCalls: a supervisor signs in to the console with its
// own token and sees the wallboard and nothing of the admin's; an agent signing in, going
// away, and a caller nobody is available for (a simulated inbound call) appear on it as they
// happen; the supervisor hangs the call up from the wallboard. Through the API the supervisor
// gets 403 on carrier configuration, and an agent 403 on the wallboard; in the page an agent's
// token opens no view.
func TestBrowserWallboardShowsStatesQueueAndCalls(t *testing.T) {
	d := newDeployment(t, 1, 0, nil, func(c *sim.Config) { c.HangupAfter = time.Minute })
	base := d.instances[0].base
	supToken := createSupervisor(t, base, "sue")
	annToken := createAgent(t, base, "ann")

	// The permission table, as a supervisor and an agent meet it.
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{http.MethodGet, "/api/admin/carriers", supToken, http.StatusForbidden},
		{http.MethodPut, "/api/admin/carriers/simtw", supToken, http.StatusForbidden},
		{http.MethodGet, "/api/admin/agents", supToken, http.StatusForbidden},
		{http.MethodPost, "/api/wallboard/ticket", supToken, http.StatusOK},
		{http.MethodPost, "/api/wallboard/ticket", annToken, http.StatusForbidden},
		{http.MethodPost, "/api/wallboard/ticket", adminToken, http.StatusOK},
	} {
		if code := request(t, c.method, base+c.path, c.token, map[string]any{}, nil); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.want)
		}
	}

	ctx := newBrowser(t, writeToneWAV(t, browserHz, 0.5, 1))
	p := page{t: t, ctx: ctx}
	signInConsole(t, p, base, supToken)
	p.wait("who the token is", `document.querySelector('[data-testid="whoami"]').textContent.includes('supervisor')`)
	p.wait("no carriers view for a supervisor", `document.querySelector('[data-testid="tab-carriers"]').hidden && `+
		`!document.querySelector('[data-testid="tab-wallboard"]').hidden`)
	p.wait("ann offline", dataRow("ann", "offline"))

	start := time.Now()
	ann := softphone(t, base, annToken)
	p.wait("ann available", dataRow("ann", "available"))
	t.Logf("agent signed in → wallboard: %v", time.Since(start))

	start = time.Now()
	if err := ann.Send(map[string]any{"type": "availability", "state": "away"}); err != nil {
		t.Fatal(err)
	}
	p.wait("ann away", dataRow("ann", "away"))
	t.Logf("agent away → wallboard: %v", time.Since(start))

	start = time.Now()
	if _, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"}); err != nil {
		t.Fatal(err)
	}
	p.wait("one caller waiting", `document.querySelector('[data-testid="queue-waiting"]').textContent === '1'`)
	t.Logf("inbound call, nobody available → queue on the wallboard: %v", time.Since(start))
	p.wait("its live call", `[...document.querySelectorAll('[data-testid="live-call-row"]')].some((r) => r.textContent.includes('+15557654321'))`)
	p.wait("the longest wait counting", `/^\d+:\d\d$/.test(document.querySelector('[data-testid="queue-longest"]').textContent)`)

	p.do("hang the call up from the wallboard", chromedp.Click(tid("live-call-hangup")))
	p.wait("the call gone", `document.querySelectorAll('[data-testid="live-call-row"]').length === 0`)
	p.wait("nobody waiting", `document.querySelector('[data-testid="queue-waiting"]').textContent === '0'`)

	// An agent's token opens no view.
	p.do("an agent's token", chromedp.SendKeys(tid("token-input"), annToken), chromedp.Click(tid("token-save")))
	p.wait("told it is an agent's", `document.querySelector('[data-testid="status"]').textContent.includes("agent's") && `+
		`document.querySelector('[data-testid="wallboard"]').hidden && document.querySelector('[data-testid="tab-wallboard"]').hidden`)
}

func dataRow(agent, state string) string {
	return `(() => { const r = document.querySelector('[data-testid="agent-row"][data-agent="` + agent + `"]'); return r !== null && r.dataset.state === '` + state + `'; })()`
}

// TestBrowserWallboardRedisDown: with Redis stopped the console says so and keeps the last
// floor; when Redis is back the stream recovers and the floor moves again.
func TestBrowserWallboardRedisDown(t *testing.T) {
	redis := redistest.NewServer(t)
	s := start(t, map[string]string{"REDIS_URL": redis.URL(), "SWITCHBOARD_REDIS_NAMESPACE": redistest.Namespace(t)})
	createAgent(t, s.base, "ann")
	ctx := newBrowser(t, writeToneWAV(t, browserHz, 0.5, 1))
	p := page{t: t, ctx: ctx}
	signInConsole(t, p, s.base, adminToken)
	p.wait("ann on the floor", dataRow("ann", "offline"))

	redis.Stop()
	p.wait("the page says storage is unavailable", visible("wallboard-storage")+` && document.querySelector('[data-testid="wallboard-storage"]').textContent.includes('storage unavailable')`)
	p.wait("the last floor still shown", dataRow("ann", "offline"))

	// The other views say so too, and a wallboard opened meanwhile gets no ticket but keeps
	// the last floor.
	p.do("to the carriers view", chromedp.Navigate(s.base+"/admin#carriers"))
	p.wait("the carriers view says so", `!document.querySelector('[data-view="carriers"]').hidden && `+
		`document.querySelector('[data-testid="status"]').textContent.includes('storage unavailable')`)
	p.do("back to the wallboard", chromedp.Navigate(s.base+"/admin#wallboard"))
	p.wait("still says so", visible("wallboard-storage"))
	p.wait("the last floor still shown", dataRow("ann", "offline"))

	redis.Start()
	p.wait("storage back", `document.querySelector('[data-testid="wallboard-storage"]').hidden`)
	createAgent(t, s.base, "bob")
	p.wait("the floor moves again", dataRow("bob", "offline"))
}
