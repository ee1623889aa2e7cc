package main

// Failover drills: whole Switchboard servers (run on port 0) on one Redis of their own, two
// simulated carriers (a Twilio-kind primary and a Telnyx-kind secondary) that send real,
// signed callbacks to the URLs Switchboard hands them, and faults switched on the primary.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

type drill struct {
	t                  *testing.T
	primary, secondary *sim.Carrier
	instances          []*server
}

// breakerJSON is the drills' breaker settings: a short deadline and open time so a drill
// takes seconds; the thresholds are the defaults' shape.
var breakerJSON = map[string]any{"failure_threshold": 3, "window": "10s", "bucket_period": "500ms",
	"open_timeout": "2s", "callback_deadline": "1s"}

func newDrill(t *testing.T, instances int, primaryCfg sim.Config) *drill {
	t.Helper()
	redis := redistest.NewServer(t)
	d := &drill{t: t}
	newSim := func(cfg sim.Config) (*sim.Carrier, string) {
		if cfg.Ring == 0 {
			cfg.Ring = 50 * time.Millisecond
		}
		cfg.HangupAfter = 150 * time.Millisecond
		c, err := sim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c.Handler())
		t.Cleanup(func() { srv.Close(); c.Close() })
		return c, srv.URL
	}
	var primaryURL, secondaryURL string
	d.primary, primaryURL = newSim(primaryCfg)
	d.secondary, secondaryURL = newSim(sim.Config{})
	for range instances {
		d.instances = append(d.instances, start(t, map[string]string{"REDIS_URL": redis.URL(), "SWITCHBOARD_LOG_LEVEL": "error"}))
	}
	d.put(0, "primary", map[string]any{"kind": "twilio", "api_url": primaryURL, "account_sid": d.primary.AccountSID(),
		"auth_token": d.primary.AuthToken(), "from": "+15550100", "priority": 0, "enabled": true,
		"request_timeout": "500ms", "breaker": breakerJSON})
	d.put(0, "secondary", map[string]any{"kind": "telnyx", "api_url": secondaryURL, "api_key": d.secondary.TelnyxAPIKey(),
		"connection_id": d.secondary.ConnectionID(), "public_key": d.secondary.PublicKeyBase64(), "from": "+15550101",
		"priority": 1, "enabled": true, "breaker": breakerJSON})
	for i := range d.instances {
		d.eventually(3*time.Second, "every instance sees both carriers", func() bool {
			var list struct{ Carriers []any }
			d.api(i, "GET", "/api/admin/carriers", nil, &list)
			return len(list.Carriers) == 2
		})
	}
	return d
}

func (d *drill) api(i int, method, path string, body, out any) int {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, d.instances[i].base+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			d.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func (d *drill) put(i int, id string, cfg map[string]any) {
	d.t.Helper()
	if code := d.api(i, "PUT", "/api/admin/carriers/"+id, cfg, nil); code != http.StatusCreated && code != http.StatusOK {
		d.t.Fatalf("PUT carrier %s: %d", id, code)
	}
}

type placedCall struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Carrier string `json:"carrier"`
	To      string `json:"to"`
	History []struct {
		EventID string `json:"event_id"`
		Detail  string `json:"detail"`
		State   string `json:"state"`
	} `json:"history"`
}

var drillNumbers atomic.Int64

// number is a fresh callee whose last digit tells the simulator what happens (0: answers).
func number(last int) string {
	return fmt.Sprintf("+1555%06d%d", 100000+drillNumbers.Add(1), last)
}

func (d *drill) place(i int, to string) (int, placedCall) {
	d.t.Helper()
	var answer struct {
		placedCall
		Call placedCall `json:"call"`
	}
	code := d.api(i, "POST", "/api/calls", map[string]string{"to": to}, &answer)
	if answer.ID == "" {
		return code, answer.Call
	}
	return code, answer.placedCall
}

func (d *drill) call(i int, id string) placedCall {
	var c placedCall
	d.api(i, "GET", "/api/calls/"+id, nil, &c)
	return c
}

func (d *drill) breaker(i int, id string) string {
	var b struct{ State string }
	d.api(i, "GET", "/api/admin/carriers/"+id+"/breaker", nil, &b)
	return b.State
}

func (d *drill) eventually(within time.Duration, what string, cond func() bool) time.Duration {
	return redistest.Eventually(d.t, within, what, cond)
}

// rangOnce checks that no callee was called on both carriers.
func (d *drill) rangOnce() {
	d.t.Helper()
	on := map[string]int{}
	for _, c := range append(d.primary.Calls(), d.secondary.Calls()...) {
		if c.Direction == "outbound" {
			on[c.To]++
		}
	}
	for to, n := range on {
		if n > 1 {
			d.t.Errorf("%s was called %d times", to, n)
		}
	}
}

func attempts(c placedCall) []string {
	var out []string
	for _, h := range c.History {
		if h.State == "" && len(h.EventID) > len(c.ID) && h.EventID[len(c.ID):len(c.ID)+9] == ":attempt:" {
			out = append(out, h.Detail)
		}
	}
	return out
}

// Drill: the primary's REST API answers 503. Every call completes on the secondary, the
// breaker opens after three faults, and no callee is rung twice.
func TestDrillPrimaryAnswers503(t *testing.T) {
	d := newDrill(t, 1, sim.Config{Faults: sim.Faults{RESTErrorRate: 1, RESTErrorStatus: 503}})
	var ids []string
	for i := range 6 {
		code, c := d.place(0, number(0))
		if code != http.StatusCreated || c.Carrier != "secondary" {
			t.Fatalf("call %d: %d %+v", i, code, c)
		}
		a := attempts(c)
		// The simulator answers 503 with Twilio's error code 20503 in the body.
		if i < 3 && (len(a) != 2 || a[0] != "primary: twilio 20503 → next" || a[1] != "accepted by secondary") {
			t.Fatalf("call %d attempts %q", i, a)
		}
		if i >= 3 && len(a) != 1 {
			t.Fatalf("call %d attempts %q: the open breaker should skip the primary", i, a)
		}
		ids = append(ids, c.ID)
	}
	if st := d.breaker(0, "primary"); st != "open" {
		t.Fatalf("primary breaker %s", st)
	}
	if n := d.primary.Stats().RESTRequests; n != 3 {
		t.Fatalf("primary got %d requests, want 3", n)
	}
	for _, id := range ids {
		d.eventually(5*time.Second, "call "+id+" completed", func() bool { return d.call(0, id).State == "completed" })
	}
	d.rangOnce()
}

// Drill: the primary accepts calls but never calls back (the 2018 incident). The breaker
// opens within the callback deadline plus 2 s, and later calls go to the secondary.
func TestDrillPrimaryDropsCallbacks(t *testing.T) {
	// The primary's callees ring for a minute, so no TwiML fetch (which would prove the
	// carrier can reach us) comes before the deadline either.
	d := newDrill(t, 1, sim.Config{Ring: time.Minute, Faults: sim.Faults{CallbackDropRate: 1}})
	start := time.Now()
	var lastPrimary time.Time
	for d.breaker(0, "primary") != "open" {
		if time.Since(start) > time.Second+2*time.Second {
			t.Fatalf("breaker not open %v after the first silent call", time.Since(start))
		}
		code, c := d.place(0, number(0))
		if code != http.StatusCreated {
			t.Fatalf("place: %d", code)
		}
		if c.Carrier == "primary" {
			lastPrimary = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("breaker open %v after the first silent call; last call on the primary at +%v",
		time.Since(start).Round(time.Millisecond), lastPrimary.Sub(start).Round(time.Millisecond))
	for range 3 {
		code, c := d.place(0, number(0))
		if code != http.StatusCreated || c.Carrier != "secondary" {
			t.Fatalf("after opening: %d %+v", code, c)
		}
		d.eventually(5*time.Second, "completed on the secondary", func() bool { return d.call(0, c.ID).State == "completed" })
	}
	d.rangOnce()
}

// Drill: two instances. When the breaker opens on one, the other stops using the carrier
// within 500 ms. When the primary recovers, one instance sends one trial call, and then
// traffic returns to the primary everywhere.
func TestDrillTwoInstancesShareTheBreakerAndProbeOnce(t *testing.T) {
	d := newDrill(t, 2, sim.Config{Faults: sim.Faults{RESTErrorRate: 1, RESTErrorStatus: 503}})
	for d.breaker(0, "primary") != "open" {
		if code, _ := d.place(0, number(0)); code != http.StatusCreated {
			t.Fatalf("place: %d", code)
		}
	}
	took := d.eventually(time.Second, "the other instance sees the breaker open", func() bool { return d.breaker(1, "primary") == "open" })
	t.Logf("instance 2 stopped using the primary %v after instance 1 opened its breaker (goal: 500 ms)", took)
	before := d.primary.Stats().RESTRequests
	if code, c := d.place(1, number(0)); code != http.StatusCreated || c.Carrier != "secondary" || d.primary.Stats().RESTRequests != before {
		t.Fatalf("instance 2 placed on %q", c.Carrier)
	}

	// Recovery: after the open time both instances place calls at the same moment; exactly
	// one reaches the primary. The primary answers it after 300 ms, so every other call is
	// placed while that trial is still out: a call placed after a quick trial had closed the
	// breaker would rightly go to the primary, and would not be a second trial.
	if err := d.primary.SetFaults(sim.Faults{RESTLatency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	d.eventually(4*time.Second, "half-open on both", func() bool {
		return d.breaker(0, "primary") == "half-open" && d.breaker(1, "primary") == "half-open"
	})
	before = d.primary.Stats().RESTRequests
	var wg sync.WaitGroup
	carriers := make([]string, 6)
	for i := range carriers {
		wg.Go(func() {
			_, c := d.place(i%2, number(0))
			carriers[i] = c.Carrier
		})
	}
	wg.Wait()
	if n := d.primary.Stats().RESTRequests - before; n != 1 {
		t.Fatalf("%d trial calls reached the primary, want 1 (calls went to %v)", n, carriers)
	}
	d.eventually(3*time.Second, "closed on both", func() bool {
		return d.breaker(0, "primary") == "closed" && d.breaker(1, "primary") == "closed"
	})
	for i := range 2 {
		if code, c := d.place(i, number(0)); code != http.StatusCreated || c.Carrier != "primary" {
			t.Fatalf("instance %d after recovery: %d %q", i+1, code, c.Carrier)
		}
	}
	var events struct {
		Events []struct{ Kind, Carrier string }
	}
	d.api(0, "GET", "/api/admin/events?limit=100", nil, &events)
	kinds := map[string]int{}
	for _, e := range events.Events {
		kinds[e.Kind]++
	}
	if kinds["failover"] == 0 || kinds["breaker-open"] == 0 || kinds["breaker-probe"] != 1 || kinds["breaker-closed"] != 1 {
		t.Fatalf("recent events %v", kinds)
	}
	d.rangOnce()
}

// Drill: a busy or declined callee, or an invalid number, is never tried on the secondary,
// and says nothing against the primary.
func TestDrillFinalOutcomesStayOnTheirCarrier(t *testing.T) {
	d := newDrill(t, 1, sim.Config{})
	for _, tc := range []struct {
		last  int
		state string
	}{{1, "busy"}, {4, "no-answer"}} {
		code, c := d.place(0, number(tc.last))
		if code != http.StatusCreated || c.Carrier != "primary" {
			t.Fatalf("...%d: %d %+v", tc.last, code, c)
		}
		d.eventually(5*time.Second, "ended "+tc.state, func() bool { return d.call(0, c.ID).State == tc.state })
	}
	code, c := d.place(0, number(3))
	if code != http.StatusUnprocessableEntity || c.State != "failed" || len(attempts(c)) != 1 {
		t.Fatalf("invalid number: %d %+v", code, c)
	}
	if n := len(d.secondary.Calls()); n != 0 || d.secondary.Stats().RESTRequests != 0 {
		t.Fatalf("the secondary was tried %d times", d.secondary.Stats().RESTRequests)
	}
	if st := d.breaker(0, "primary"); st != "closed" {
		t.Fatalf("primary breaker %s", st)
	}
}
