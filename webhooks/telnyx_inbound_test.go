package webhooks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// telnyxWithoutDirection is a Telnyx webhook as Telnyx sends call.answered and call.hangup:
// no direction, and no client_state of ours (an inbound call we never commanded).
func telnyxWithoutDirection(id, kind, ccid string, extra map[string]any) []byte {
	var env map[string]any
	json.Unmarshal(signedTelnyxFixture(id, kind, ccid, "", extra), &env)
	p := env["data"].(map[string]any)["payload"].(map[string]any)
	delete(p, "direction")
	delete(p, "state")
	b, _ := json.Marshal(env)
	return b
}

// TestTelnyxInboundHangupWithoutDirection: an inbound call nobody takes (Accept fails) still
// ends when Telnyx's hangup, which names no direction, arrives; in either arrival order.
func TestTelnyxInboundHangupWithoutDirection(t *testing.T) {
	for _, order := range []string{"initiated first", "hangup first"} {
		t.Run(order, func(t *testing.T) {
			h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Actions = d.Store.(*store.Redis); d.Inbound = noAgents{} })
			ccid := "v3:" + strings.Repeat("b", 24)
			initiated := signedTelnyxFixture("in-1", "call.initiated", ccid, "incoming", nil)
			hangup := telnyxWithoutDirection("in-2", "call.hangup", ccid,
				map[string]any{"hangup_cause": "normal_clearing", "hangup_source": "caller", "sip_hangup_cause": "unspecified"})
			bodies := [][]byte{initiated, hangup}
			if order == "hangup first" {
				bodies = [][]byte{hangup, initiated}
			}
			for i, b := range bodies {
				if r := h.telnyxPost("/webhooks/tx/events", b, time.Now()); r.StatusCode != 204 {
					t.Fatalf("webhook %d: %d", i, r.StatusCode)
				}
			}
			got, err := h.st.CallByCarrierID(context.Background(), ccid, "")
			if err != nil {
				t.Fatalf("the call is not indexed by its carrier id: %v", err)
			}
			// The caller gave up before anyone answered: canceled, not completed.
			if got.State != call.Canceled || got.Direction != call.Inbound || len(got.History) != 2 {
				t.Fatalf("call %v %v, %d entries; want canceled inbound with 2", got.State, got.Direction, len(got.History))
			}
			// The answer owed for the call is stored; run its first step: nobody takes it.
			job, err := h.st.JobOf(context.Background(), store.JobID(store.JobAnswer, got.ID))
			if err != nil {
				t.Fatalf("no answer job: %v", err)
			}
			if _, taken, err := h.srv.PrepareAnswer(context.Background(), job.Job); taken || err != nil {
				t.Fatalf("a call nobody took was to be answered: taken %v, %v", taken, err)
			}
		})
	}
}

// TestTelnyxHangupAfterAnswerIsCompleted: the same normal_clearing ends an answered call
// completed.
func TestTelnyxHangupAfterAnswerIsCompleted(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	ccid := "v3:" + strings.Repeat("c", 24)
	for i, b := range [][]byte{
		signedTelnyxFixture("an-1", "call.initiated", ccid, "incoming", nil),
		telnyxWithoutDirection("an-2", "call.answered", ccid, nil),
		telnyxWithoutDirection("an-3", "call.hangup", ccid, map[string]any{"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
	} {
		if r := h.telnyxPost("/webhooks/tx/events", b, time.Now()); r.StatusCode != 204 {
			t.Fatalf("webhook %d: %d", i, r.StatusCode)
		}
	}
	got, err := h.st.CallByCarrierID(context.Background(), ccid, "")
	if err != nil || got.State != call.Completed {
		t.Fatalf("answered call: %+v %v", got.State, err)
	}
}

// TestTelnyxHangupOfACallNeverInitiatedIsStored: an inbound call whose call.initiated was
// never stored (refused with 503 while Redis was away, and not retried) still has a record
// once its hangup is acknowledged: the hangup names no call of ours, so the call is one we
// never commanded, an inbound one, and it is stored under its derived id rather than parked
// for a call.initiated that will not come.
func TestTelnyxHangupOfACallNeverInitiatedIsStored(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	ccid := "v3:" + strings.Repeat("d", 24)
	hangup := telnyxWithoutDirection("lone-1", "call.hangup", ccid,
		map[string]any{"hangup_cause": "normal_clearing", "hangup_source": "caller"})
	if r := h.telnyxPost("/webhooks/tx/events", hangup, time.Now()); r.StatusCode != 204 {
		t.Fatalf("hangup: %d", r.StatusCode)
	}
	got, err := h.st.CallByCarrierID(context.Background(), ccid, "tx")
	if err != nil {
		t.Fatalf("the acknowledged hangup is on no call: %v", err)
	}
	if got.ID != store.InboundCallID("tx", ccid) || got.State != call.Canceled || got.Direction != call.Inbound ||
		len(got.History) != 1 || got.History[0].EventID != "tx:lone-1" {
		t.Fatalf("call %s %v %v with %d entries; want the derived inbound call, canceled, with the hangup", got.ID, got.State, got.Direction, len(got.History))
	}
}
