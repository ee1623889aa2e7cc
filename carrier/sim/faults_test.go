package sim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

func TestRESTErrorRate(t *testing.T) {
	c, srv := newCarrier(t, sim.Config{Seed: 7})
	a := api{t, srv, c}
	c.SetFaults(sim.Faults{RESTErrorRate: 1})
	if status, body := a.twilio("POST", "/Calls.json", url.Values{"To": {"+15551230000"}, "From": {"+1"}, "Url": {"http://x"}}); status != 503 || body["code"] != 20503.0 {
		t.Errorf("twilio create: %d %v", status, body)
	}
	if status, body := a.telnyx("POST", "/v2/calls", map[string]any{}); status != 503 || body["errors"] == nil {
		t.Errorf("telnyx dial: %d %v", status, body)
	}
	c.SetFaults(sim.Faults{RESTErrorRate: 1, RESTErrorStatus: 429})
	if status, body := a.twilio("GET", "/Calls/CA00.json", nil); status != 429 || body["code"] != 20429.0 {
		t.Errorf("twilio 429: %d %v", status, body)
	}
	if status, body := a.telnyx("GET", "/v2/calls/nope", nil); status != 429 || body["errors"].([]any)[0].(map[string]any)["code"] != "10011" {
		t.Errorf("telnyx 429: %d %v", status, body)
	}
	if s := c.Stats(); s.RESTRequests != 4 || s.RESTErrorsInjected != 4 || s.CallsCreated != 0 {
		t.Errorf("stats %+v", s)
	}

	// Half the requests fail; the seeded source makes it the same half every run.
	c.SetFaults(sim.Faults{RESTErrorRate: 0.5})
	failed := 0
	for range 40 {
		if status, _ := a.twilio("GET", "/Calls/CA00.json", nil); status == 503 {
			failed++
		}
	}
	if failed < 10 || failed > 30 {
		t.Errorf("%d of 40 requests failed at rate 0.5", failed)
	}
}

func TestRESTLatency(t *testing.T) {
	c, srv := newCarrier(t, sim.Config{Faults: sim.Faults{RESTLatency: 150 * time.Millisecond}})
	a := api{t, srv, c}
	start := time.Now()
	if status, _ := a.twilio("GET", "/Calls/CA00.json", nil); status != 404 {
		t.Errorf("status %d", status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v, want at least 150ms", d)
	}
}

func TestRESTHang(t *testing.T) {
	c, srv := newCarrier(t, sim.Config{Faults: sim.Faults{RESTHang: true}})
	impatient := *srv.Client()
	impatient.Timeout = 100 * time.Millisecond
	get := func(client *http.Client) (*http.Response, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/v2/calls/nope", nil)
		req.Header.Set("Authorization", "Bearer "+c.TelnyxAPIKey())
		return client.Do(req)
	}
	resp, err := get(&impatient)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a hung carrier answered %d", resp.StatusCode)
	}
	if !strings.Contains(err.Error(), "Client.Timeout") {
		t.Errorf("error %v, want a client timeout", err)
	}
	c.SetFaults(sim.Faults{})
	resp, err = get(srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity { // Telnyx's answer for a call it does not know
		t.Errorf("after the hang: %d", resp.StatusCode)
	}
}

func TestCallbackDropRate(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{Faults: sim.Faults{CallbackDropRate: 1}})
	sb.use(c)
	a := api{t, srv, c}

	// The call proceeds, TwiML and media included; Switchboard hears no callback.
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) > 0 })
	if _, call := a.twilio("GET", "/Calls/"+sid+".json", nil); call["status"] != "in-progress" {
		t.Errorf("GET %v", call)
	}
	if status, call := a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"completed"}}); status != 200 || call["status"] != "completed" {
		t.Errorf("hangup %d %v", status, call)
	}
	_, body := a.telnyx("POST", "/v2/calls", map[string]any{
		"connection_id": c.ConnectionID(), "from": "+1", "to": "+15551230000", "webhook_url": sb.url("/events"),
	})
	id := body["data"].(map[string]any)["call_control_id"].(string)
	a.waitStatus(id, "in-progress")

	redistest.Eventually(t, 10*time.Second, "the drops", func() bool { return c.Stats().CallbacksDropped == 6 })
	if n := len(sb.statusList()); n != 0 {
		t.Errorf("%d status callbacks arrived", n)
	}
	if n := len(sb.eventsOf(id)); n != 0 {
		t.Errorf("%d webhooks arrived", n)
	}
	for _, d := range c.Delivered() {
		if !d.Dropped || d.Acked {
			t.Errorf("delivery %+v", d)
		}
	}
	if s := c.Stats(); s.CallbacksSent != 0 || s.VoiceRequests != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestCallbackDelay(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{Faults: sim.Faults{CallbackDelay: 300 * time.Millisecond}})
	sb.use(c)
	a := api{t, srv, c}
	start := time.Now()
	sid := a.dialTwilio(sb, "+15551230001")
	redistest.Eventually(t, 10*time.Second, "the first callback", func() bool { return len(sb.statusesOf(sid)) > 0 })
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("first callback after %v, want at least 300ms", d)
	}
	redistest.Eventually(t, 10*time.Second, "both callbacks", func() bool { return len(sb.statusesOf(sid)) == 2 })
	if got := sb.callStatuses(sid); !slices.Equal(got, []string{"initiated", "busy"}) {
		t.Errorf("callbacks %v", got)
	}
}

func TestDuplicateCallbacks(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{Faults: sim.Faults{DuplicateRate: 1}})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230001")
	redistest.Eventually(t, 10*time.Second, "four callbacks", func() bool { return len(sb.statusesOf(sid)) == 4 })
	got := sb.statusesOf(sid)
	for i, want := range []string{"0", "0", "1", "1"} {
		if got[i].Get("SequenceNumber") != want {
			t.Errorf("callback %d has SequenceNumber %s", i, got[i].Get("SequenceNumber"))
		}
	}
	if got[0].Encode() != got[1].Encode() || got[2].Encode() != got[3].Encode() {
		t.Error("a duplicate differs from its original")
	}
	redistest.Eventually(t, 10*time.Second, "the carrier to record 4 deliveries", func() bool { return c.Stats().CallbacksDelivered == 4 })
	if s := c.Stats(); s.CallbacksDuplicated != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestReorderedCallbacks(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{Faults: sim.Faults{Reorder: true, ReorderHold: time.Minute}})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	a.waitStatus(sid, "in-progress")
	redistest.Eventually(t, 10*time.Second, "the first pair", func() bool { return len(sb.statusesOf(sid)) == 2 })
	a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"completed"}})
	redistest.Eventually(t, 10*time.Second, "the second pair", func() bool { return len(sb.statusesOf(sid)) == 4 })
	if got := sb.callStatuses(sid); !slices.Equal(got, []string{"ringing", "initiated", "completed", "in-progress"}) {
		t.Errorf("callbacks %v", got)
	}
	var seq []string
	for _, p := range sb.statusesOf(sid) {
		seq = append(seq, p.Get("SequenceNumber"))
	}
	if !slices.Equal(seq, []string{"1", "0", "3", "2"}) {
		t.Errorf("SequenceNumbers %v", seq)
	}
}

func TestReorderHoldsNoLongerThanReorderHold(t *testing.T) {
	// An inbound Telnyx call fires nothing after call.initiated until it is answered, so
	// the held webhook must go out on its own.
	sb := newSwitchboard(t)
	c, _ := newCarrier(t, sim.Config{
		TelnyxWebhookURL: sb.url("/events"), RingTimeout: time.Minute,
		Faults: sim.Faults{Reorder: true, ReorderHold: 100 * time.Millisecond},
	})
	sb.use(c)
	start := time.Now()
	id, _ := c.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	redistest.Eventually(t, 10*time.Second, "call.initiated", func() bool { return len(sb.eventsOf(id)) == 1 })
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("call.initiated after %v, want at least the 100ms hold", d)
	}
}

func TestOutage(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{TwilioVoiceURL: sb.url("/voice"), TwilioStatusURL: sb.url("/status")})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "in-progress", func() bool { return len(sb.statusesOf(sid)) == 3 })
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil })

	c.SetFaults(sim.Faults{Outage: true})
	if status, _ := a.twilio("GET", "/Calls/"+sid+".json", nil); status != 503 {
		t.Errorf("twilio during the outage: %d", status)
	}
	if status, _ := a.telnyx("GET", "/v2/calls/x", nil); status != 503 {
		t.Errorf("telnyx during the outage: %d", status)
	}
	// The live call goes on and ends, but nothing reaches Switchboard; an inbound call
	// cannot fetch its TwiML.
	if err := c.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	in, _ := c.Inbound(sim.InboundRequest{Kind: sim.Twilio})
	redistest.Eventually(t, 10*time.Second, "the inbound call to fail", func() bool { return a.report(in).Status == "completed" })
	redistest.Eventually(t, 10*time.Second, "the drops", func() bool { return c.Stats().CallbacksDropped == 2 })
	if got := sb.callStatuses(sid); len(got) != 3 || len(sb.voiceList()) != 1 {
		t.Errorf("callbacks %v, voice requests %d", got, len(sb.voiceList()))
	}
	if r := a.report(in); len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "application error") {
		t.Errorf("inbound report %+v", r)
	}

	c.SetFaults(sim.Faults{})
	if status, call := a.twilio("GET", "/Calls/"+sid+".json", nil); status != 200 || call["status"] != "completed" {
		t.Errorf("after the outage: %d %v", status, call)
	}
}

func TestIntermittentOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := sim.New(sim.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		get := func() int {
			req := httptest.NewRequest("GET", "/2010-04-01/Accounts/"+c.AccountSID()+"/Calls/CA00.json", nil)
			req.SetBasicAuth(c.AccountSID(), c.AuthToken())
			w := httptest.NewRecorder()
			c.Handler().ServeHTTP(w, req)
			return w.Code
		}
		if got := get(); got != 404 {
			t.Fatalf("healthy: %d", got)
		}
		c.SetFaults(sim.Faults{OutageOn: 10 * time.Second, OutageOff: 20 * time.Second})
		var elapsed time.Duration
		for _, step := range []struct {
			at   time.Duration // since the windows were set
			want int
		}{
			{1 * time.Second, 503}, {9 * time.Second, 503}, {11 * time.Second, 404}, {29 * time.Second, 404},
			{31 * time.Second, 503}, {39 * time.Second, 503}, {41 * time.Second, 404},
		} {
			time.Sleep(step.at - elapsed)
			elapsed = step.at
			if got := get(); got != step.want {
				t.Errorf("%v into the windows: %d, want %d", step.at, got, step.want)
			}
		}
	})
}

func TestFaultsControlAPI(t *testing.T) {
	c, srv := newCarrier(t, sim.Config{})
	client := srv.Client()
	send := func(method, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+"/sim/faults", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if status, f := send("POST", `{"callback_drop_rate":0.5,"rest_latency":"250ms","callback_delay":100}`); status != 200 || f["rest_latency"] != "250ms" || f["callback_delay"] != "100ms" {
		t.Errorf("set: %d %v", status, f)
	}
	if status, f := send("POST", `{"outage":true}`); status != 200 || f["callback_drop_rate"] != 0.5 || f["outage"] != true {
		t.Errorf("set only the outage: %d %v", status, f)
	}
	if f := c.Faults(); f.CallbackDropRate != 0.5 || f.RESTLatency != 250*time.Millisecond || f.CallbackDelay != 100*time.Millisecond || !f.Outage {
		t.Errorf("faults %+v", f)
	}
	if status, _ := send("POST", `{"rest_error_rate":2}`); status != 400 {
		t.Errorf("a rate of 2: %d", status)
	}
	if status, _ := send("POST", `{"rest_latency":"soon"}`); status != 400 {
		t.Errorf("a bad duration: %d", status)
	}
	if status, f := send("GET", ""); status != 200 || f["outage"] != true {
		t.Errorf("get: %d %v", status, f)
	}
	if status, _ := send("DELETE", ""); status != 200 || c.Faults() != (sim.Faults{}) {
		t.Errorf("clear: %d %+v", status, c.Faults())
	}
}
