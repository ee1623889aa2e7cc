package agents

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// talking waits until the caller hears hz and the agent p hears the caller.
func talking(t *testing.T, stream *testStream, p *agentsim.SimSoftphone, hz float64, what string) {
	t.Helper()
	stream.reset()
	p.Agent.ResetRecording()
	redistest.Eventually(t, 5*time.Second, what, func() bool {
		return power(stream.recent(3200), hz) > heardPower && len(p.Agent.Recording()) >= 3200 &&
			power(last(p.Agent.Recording(), 3200), callerHz) > heardPower
	})
}

func transferTo(to string) map[string]any {
	return map[string]any{"type": signal.TypeTransfer, "to": to, "mode": signal.TransferBlind}
}

// TestBlindTransferToAnotherAgent: ann transfers her call to bob. She is released at once and
// wraps up; the caller hears the hold tone while bob rings, then bob; bob has the call.
func TestBlindTransferToAnotherAgent(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	bob := h.agent(t, "bob", bobHz)
	id, stream := answeredBy(t, h, ann, annHz)

	stream.reset()
	ann.Send(transferTo("agent:bob"))
	if m := expect(t, ann, "ann released", typed(signal.TypeEnded, id)); m.Reason != held.ReasonTransferred {
		t.Fatalf("ann: %s", m.Raw)
	}
	expect(t, ann, "ann wraps up", availability("wrap-up"))
	expect(t, bob, "bob rings", typed(signal.TypeRinging, id))
	// What the caller hears from ann, then the hold tone: the switch's longest silence.
	redistest.Eventually(t, 5*time.Second, "the hold tone", func() bool {
		return media.Goertzel(stream.recent(800), media.HoldToneHz) > 0.01
	})
	switchGap := stream.longestGap()
	stream.reset()
	redistest.Eventually(t, 5*time.Second, "the caller's audio while bob rings", func() bool { return len(stream.recent(1<<20)) >= 4800 })
	if p := power(stream.recent(1<<20), annHz); p > absentPower {
		t.Errorf("the caller still hears ann after the transfer (%.4f)", p)
	}

	bob.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, bob, "bob has the call", typed(signal.TypeCall, id))
	redistest.Eventually(t, 5*time.Second, "the caller hearing bob", func() bool { return power(stream.recent(1600), bobHz) > heardPower })
	t.Logf("the caller's longest silence: %v from ann to the hold tone, %v from the hold tone to bob",
		switchGap.Round(time.Millisecond), stream.longestGap().Round(time.Millisecond))
	talking(t, stream, bob, bobHz, "the caller and bob hear each other")
	if o, _ := h.st.Offer(context.Background(), id); o.State != agentdb.OfferAnswered || o.Agent != "bob" {
		t.Fatalf("offer after the transfer: %+v", o)
	}
	// The record keeps the agent who answered first; its history has each one who answered.
	c, err := h.st.Call(context.Background(), id)
	if err != nil || c.Agent != "ann" || !slices.ContainsFunc(c.History, func(e call.Entry) bool {
		return e.Detail == "answered by agent bob"
	}) {
		t.Fatalf("the call's record does not show bob took it: %+v %v", c, err)
	}
	expect(t, ann, "ann available again", availability("available"))
}

// TestTransferAcrossInstancesComesBack: ann (on a, which holds the call) transfers to bob on b;
// bob declines, and the call rings ann again; she takes it back.
func TestTransferAcrossInstancesComesBack(t *testing.T) {
	a, _, ann, bob, id, stream := annOnABobOnB(t)

	ann.Send(transferTo("agent:bob"))
	expect(t, ann, "ann released", typed(signal.TypeEnded, id))
	expect(t, bob, "bob rings on the other instance", typed(signal.TypeRinging, id))
	bob.Send(map[string]any{"type": signal.TypeDecline, "call_id": id})
	expect(t, ann, "the call rings ann again", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "ann has it back", typed(signal.TypeCall, id))
	talking(t, stream, ann, annHz, "the caller and ann hear each other again")

	// And across for good: to bob, who answers through the relay.
	ann.Send(transferTo("agent:bob"))
	// Expect takes each message once: this is the second ringing.
	expect(t, bob, "bob rings again", typed(signal.TypeRinging, id))
	bob.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	redistest.Eventually(t, 5*time.Second, "bob has the call", func() bool {
		o, _ := a.st.Offer(context.Background(), id)
		return o.State == agentdb.OfferAnswered && o.Agent == "bob"
	})
	talking(t, stream, bob, bobHz, "the caller and bob hear each other through the relay")
}

// TestTransferRefusals: each target that cannot take the call is refused with its code, and
// the call stays with its agent.
func TestTransferRefusals(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	cat := h.agent(t, "cat", bobHz)
	cat.Send(map[string]any{"type": signal.TypeAvailability, "state": "away"})
	expect(t, cat, "cat away", availability("away"))
	if _, _, err := h.st.PutAgent(context.Background(), "dan", "Dan", agentdb.NewAgentToken("dan"), true); err != nil {
		t.Fatal(err)
	}
	id, stream := answeredBy(t, h, ann, annHz)

	for _, tt := range []struct {
		msg  map[string]any
		code string
	}{
		{transferTo("agent:zed"), signal.CodeUnknownAgent},
		{transferTo("agent:"), signal.CodeUnknownAgent},
		{transferTo("agent:dan"), signal.CodeTargetOffline},
		{transferTo("agent:cat"), signal.CodeTargetUnavailable},
		{transferTo("agent:ann"), signal.CodeBadRequest},
		{transferTo("bob"), signal.CodeBadRequest},
		{transferTo("+1555"), signal.CodeBadRequest},
		{map[string]any{"type": signal.TypeTransfer, "to": "+15551234567", "mode": signal.TransferWarm}, signal.CodeNotImplemented},
		{map[string]any{"type": signal.TypeTransfer, "to": "agent:cat", "mode": signal.TransferWarm}, signal.CodeTargetUnavailable},
		{map[string]any{"type": signal.TypeTransferComplete}, signal.CodeNoCall}, // no consult going
		{map[string]any{"type": signal.TypeTransfer, "to": "agent:cat", "mode": "loud"}, signal.CodeBadRequest},
		{map[string]any{"type": signal.TypeTransfer, "call_id": "CLnone", "to": "agent:cat", "mode": "blind"}, signal.CodeNoCall},
	} {
		ann.Send(tt.msg)
		m := expect(t, ann, "a refusal", typed(signal.TypeError, ""))
		if m.Code != tt.code {
			t.Errorf("transfer %v: %s, want code %s", tt.msg, m.Raw, tt.code)
		}
	}
	// A busy target: bob on a call of his own.
	bob := h.agent(t, "bob", bobHz)
	other, _ := answeredBy(t, h, bob, bobHz)
	ann.Send(transferTo("agent:bob"))
	if m := expect(t, ann, "busy", typed(signal.TypeError, "")); m.Code != signal.CodeTargetBusy {
		t.Errorf("transfer to bob on %s: %s", other, m.Raw)
	}
	talking(t, stream, ann, annHz, "the caller still with ann")
	if o, _ := h.st.Offer(context.Background(), id); o.Agent != "ann" || o.State != agentdb.OfferAnswered {
		t.Errorf("the refused transfers moved the call: %+v", o)
	}
}

// TestTransferRingsOutBackToTheAgentOrTheQueue: a target that lets the call ring out gives it
// back to the transferring agent; when that agent is gone too, the call waits in the queue
// and goes to whoever frees up.
func TestTransferRingsOutBackToTheAgentOrTheQueue(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) { o.RingTimeout = 500 * time.Millisecond })
	ann := h.agent(t, "ann", annHz)
	bob := h.agent(t, "bob", bobHz)
	id, stream := answeredBy(t, h, ann, annHz)

	ann.Send(transferTo("agent:bob"))
	expect(t, bob, "bob rings", typed(signal.TypeRinging, id))
	if m := expect(t, bob, "bob misses it", typed(signal.TypeEnded, id)); m.Reason != held.ReasonMissed {
		t.Fatalf("bob: %s", m.Raw)
	}
	expect(t, ann, "back to ann", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	talking(t, stream, ann, annHz, "the caller back with ann")

	// ann transfers to cat, then signs out; cat lets it ring out: nobody to ring back, so the
	// call waits in the queue, hearing the hold tone, until dan signs in.
	cat := h.agent(t, "cat", bobHz)
	ann.Send(transferTo("agent:cat"))
	expect(t, cat, "cat rings", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "offline"})
	redistest.Eventually(t, 5*time.Second, "ann offline", func() bool {
		p, _ := h.st.Presence(context.Background(), "ann")
		return p.State == agentdb.Offline || p.State == agentdb.AvailabilityUnknown
	})
	expect(t, cat, "cat misses it", typed(signal.TypeEnded, id))
	redistest.Eventually(t, 5*time.Second, "the call queued", func() bool {
		o, _ := h.st.Offer(context.Background(), id)
		return o.State == agentdb.OfferQueued
	})
	stream.reset()
	redistest.Eventually(t, 5*time.Second, "the caller's audio in the queue", func() bool { return len(stream.recent(1<<20)) >= 4800 })
	hears(t, "the queued caller", stream.recent(3200), map[float64]bool{annHz: false, bobHz: false})
	dan := h.agent(t, "dan", 2400)
	expect(t, dan, "dan gets the queued call", typed(signal.TypeRinging, id))
}

// TestTransferTargetOnAnInstanceThatDies: bob's instance dies while the call rings for him;
// the ring times out at the holder and the call comes back to ann.
func TestTransferTargetOnAnInstanceThatDies(t *testing.T) {
	_, b, ann, bob, id, stream := annOnABobOnB(t)

	ann.Send(transferTo("agent:bob"))
	expect(t, bob, "bob rings", typed(signal.TypeRinging, id))
	b.kill()
	expect(t, ann, "back to ann", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	talking(t, stream, ann, annHz, "the caller back with ann")
}
