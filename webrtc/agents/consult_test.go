package agents

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

func transferState(state string) func(agentsim.SoftphoneMessage) bool {
	return func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeTransfer && m.State == state }
}

// listen resets what the caller and the agents heard and waits for 400 ms more of each.
func listen(t *testing.T, what string, stream *testStream, agents ...*agentsim.SimSoftphone) {
	t.Helper()
	stream.reset()
	for _, a := range agents {
		a.Agent.ResetRecording()
	}
	redistest.Eventually(t, 5*time.Second, what, func() bool {
		for _, a := range agents {
			if len(a.Agent.Recording()) < 2*3200 {
				return false
			}
		}
		return len(stream.recent(1<<20)) >= 2*3200
	})
}

// TestWarmTransferConsultConferenceComplete: ann (on a, which holds the call) consults bob
// (on b, through the relay). While they talk the caller hears the hold tone and neither
// agent; the conference lets each of the three hear the other two and not itself; complete
// leaves the caller with bob, and ann is released.
func TestWarmTransferConsultConferenceComplete(t *testing.T) {
	a, _, ann, bob, id, stream := annOnABobOnB(t)

	ann.Send(map[string]any{"type": signal.TypeTransfer, "to": "agent:bob", "mode": signal.TransferWarm})
	expect(t, ann, "the consult ringing", transferState(held.TransferRinging))
	if m := expect(t, bob, "bob rings to consult", typed(signal.TypeRinging, id)); !strings.Contains(string(m.Raw), `"consult_by":"ann"`) {
		t.Fatalf("bob's ringing: %s", m.Raw)
	}
	bob.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, bob, "bob on the consult", typed(signal.TypeCall, id))
	expect(t, ann, "consulting", transferState(held.TransferConsulting))

	listen(t, "the consult's audio", stream, ann, bob)
	if p := media.Goertzel(stream.recent(1 << 20)[:1600], media.HoldToneHz); p < 0.01 {
		t.Errorf("the caller does not hear the hold tone during the consult (%.4f)", p)
	}
	hears(t, "the caller during the consult", stream.recent(3200), map[float64]bool{annHz: false, bobHz: false})
	hears(t, "ann during the consult", last(ann.Agent.Recording(), 3200), map[float64]bool{bobHz: true, callerHz: false})
	hears(t, "bob during the consult", last(bob.Agent.Recording(), 3200), map[float64]bool{annHz: true, callerHz: false})

	ann.Send(map[string]any{"type": signal.TypeTransferConference, "call_id": id})
	expect(t, ann, "conference", transferState(held.TransferConference))
	listen(t, "the conference's audio", stream, ann, bob)
	hears(t, "the caller in the conference", stream.recent(3200), map[float64]bool{annHz: true, bobHz: true, callerHz: false})
	hears(t, "ann in the conference", last(ann.Agent.Recording(), 3200), map[float64]bool{callerHz: true, bobHz: true, annHz: false})
	hears(t, "bob in the conference", last(bob.Agent.Recording(), 3200), map[float64]bool{callerHz: true, annHz: true, bobHz: false})

	ann.Send(map[string]any{"type": signal.TypeTransferComplete, "call_id": id})
	if m := expect(t, ann, "ann released", typed(signal.TypeEnded, id)); m.Reason != held.ReasonTransferred {
		t.Fatalf("ann: %s", m.Raw)
	}
	expect(t, ann, "ann wraps up", availability("wrap-up"))
	talking(t, stream, bob, bobHz, "the caller and bob after the transfer")
	hears(t, "the caller after the transfer", stream.recent(3200), map[float64]bool{annHz: false})
	if o, _ := a.st.Offer(context.Background(), id); o.State != agentdb.OfferAnswered || o.Agent != "bob" || o.Consult != "" {
		t.Fatalf("offer after the transfer: %+v", o)
	}
	if c := a.held(id); c == nil || c.IsRoom() {
		t.Error("the call is still a room with two parties")
	}

	bob.Send(map[string]any{"type": signal.TypeHangup, "call_id": id})
	redistest.Eventually(t, 5*time.Second, "the holder hangs up", a.carriers.has(&a.carriers.hungUp, id))
}

// TestWarmTransferCancelAndDecline: a consult that is canceled, and one the consulted agent
// declines, both leave the caller with the first agent.
func TestWarmTransferCancelAndDecline(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	bob := h.agent(t, "bob", bobHz)
	id, stream := answeredBy(t, h, ann, annHz)
	warm := map[string]any{"type": signal.TypeTransfer, "to": "agent:bob", "mode": signal.TransferWarm}

	ann.Send(warm)
	expect(t, bob, "bob rings", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeTransferComplete, "call_id": id})
	if m := expect(t, ann, "complete before bob answers", typed(signal.TypeError, "")); m.Code != signal.CodeRinging {
		t.Errorf("complete while bob rings: %s", m.Raw)
	}
	bob.Send(map[string]any{"type": signal.TypeDecline, "call_id": id})
	if m := expect(t, ann, "the consult declined", transferState(held.TransferCanceled)); m.Raw == nil {
		t.Fatal("no state")
	}
	talking(t, stream, ann, annHz, "the caller back with ann after the decline")

	// bob is still available (a consult he declined leaves him so): consult and cancel.
	ann.Send(warm)
	expect(t, bob, "bob rings again", typed(signal.TypeRinging, id))
	bob.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "consulting", transferState(held.TransferConsulting))
	ann.Send(map[string]any{"type": signal.TypeTransferCancel, "call_id": id})
	expect(t, bob, "bob's part over", func(m agentsim.SoftphoneMessage) bool {
		return m.Type == signal.TypeEnded && m.CallID == id && m.Reason == held.ReasonConsultEnded
	})
	expect(t, ann, "canceled", transferState(held.TransferCanceled))
	talking(t, stream, ann, annHz, "the caller back with ann after the cancel")
	hears(t, "the caller after the cancel", stream.recent(3200), map[float64]bool{bobHz: false})
	if o, _ := h.st.Offer(context.Background(), id); o.Agent != "ann" || o.Consult != "" {
		t.Fatalf("offer after the cancel: %+v", o)
	}
	if c := h.held(id); c == nil || c.IsRoom() {
		t.Error("the call is still a room after the cancel")
	}
}
