package sim_test

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/sim"
)

// fixtureKeys are the top-level keys of a documented answer in carrier/testdata (under "data"
// for Telnyx).
func fixtureKeys(t *testing.T, name string, under string) []string {
	t.Helper()
	raw, err := os.ReadFile("../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if under != "" {
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(m[under], &inner); err != nil {
			t.Fatal(err)
		}
		m = inner
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func hasKeys(t *testing.T, what string, got map[string]any, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := got[k]; !ok {
			t.Errorf("%s lacks %q, which the carrier's documented answer has", what, k)
		}
	}
}

// While callbacks are dropped the REST API keeps telling the truth, the call's end included:
// that is what the reconciler relies on.
func TestStatusAPITellsTheTruthWhileCallbacksAreDropped(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{HangupAfter: 300 * time.Millisecond, Faults: sim.Faults{CallbackDropRate: 1}})
	sb.use(c)
	a := api{t, srv, c}

	sid := a.dialTwilio(sb, "+15551230000")
	a.waitStatus(sid, "completed")
	status, res := a.twilio("GET", "/Calls/"+sid+".json", nil)
	if status != http.StatusOK || res["status"] != "completed" || res["end_time"] == nil || res["duration"] == nil {
		t.Fatalf("twilio GET after the end: %d %v", status, res)
	}
	hasKeys(t, "the twilio call resource", res, fixtureKeys(t, "twilio_call_fetch.json", ""))
	if n := a.report(sid).StatusLookups; n != 1 {
		t.Fatalf("the report counts %d look-ups, want 1", n)
	}
	raw, _ := json.Marshal(res)
	if got := carrier.ClassifyTwilioStatus(status, raw); got.Liveness != carrier.Ended || got.State != call.Completed || got.EndedAt.IsZero() {
		t.Fatalf("classified %+v", got)
	}

	_, body := a.telnyx("POST", "/v2/calls", map[string]any{
		"connection_id": c.ConnectionID(), "from": "+1", "to": "+15551230000", "webhook_url": sb.url("/events"),
	})
	id := body["data"].(map[string]any)["call_control_id"].(string)
	a.waitStatus(id, "in-progress")
	status, res = a.telnyx("GET", "/v2/calls/"+id, nil)
	if data := res["data"].(map[string]any); status != http.StatusOK || data["is_alive"] != true || data["end_time"] != nil {
		t.Fatalf("telnyx GET while live: %d %v", status, res)
	}
	a.waitStatus(id, "completed")
	status, res = a.telnyx("GET", "/v2/calls/"+id, nil)
	data := res["data"].(map[string]any)
	if status != http.StatusOK || data["is_alive"] != false || data["end_time"] == nil {
		t.Fatalf("telnyx GET after the end: %d %v", status, res)
	}
	hasKeys(t, "the telnyx call status", data, fixtureKeys(t, "telnyx_call_status.json", "data"))
	raw, _ = json.Marshal(res)
	if got := carrier.ClassifyTelnyxStatus(status, raw); got.Liveness != carrier.Ended || got.EndedAt.IsZero() {
		t.Fatalf("classified %+v", got)
	}
	if n := len(sb.statusList()) + len(sb.eventsOf(id)); n != 0 {
		t.Fatalf("%d callbacks arrived; the fault drops them all", n)
	}

	// A call Telnyx does not know: 422, as documented.
	status, res = a.telnyx("GET", "/v2/calls/v3:nope", nil)
	raw, _ = json.Marshal(res)
	if status != http.StatusUnprocessableEntity || carrier.ClassifyTelnyxStatus(status, raw).Liveness != carrier.Gone {
		t.Fatalf("unknown call: %d %v", status, res)
	}
}

// An inbound caller's own HangupAfter overrides the configured one: the drill keeps its
// agents' callers on the line longer than the rest of its calls.
func TestInboundCallersOwnHangupAfter(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{HangupAfter: time.Hour, TwilioVoiceURL: sb.url("/voice"), TwilioStatusURL: sb.url("/status")})
	sb.use(c)
	a := api{t, srv, c}
	sb.mu.Lock()
	sb.twiml = `<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="60"/></Response>`
	sb.mu.Unlock()

	sid, err := c.Inbound(sim.InboundRequest{Kind: sim.Twilio, HangupAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The configured hour would keep it up far past waitStatus's 10 s.
	a.waitStatus(sid, "completed")
}
