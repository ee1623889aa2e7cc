package agents

import (
	"context"
	"strings"
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

// farHz is the tone the far end of a transfer to a number plays.
const farHz = 1400

const farNumber = "+15551234567"

// placedTo waits until the hub has the carrier side place a call to number and returns it.
func (h *testHub) placedTo(t *testing.T, number string) Placement {
	t.Helper()
	var got Placement
	redistest.Eventually(t, 5*time.Second, "the leg to "+number+" placed", func() bool {
		h.carriers.mu.Lock()
		defer h.carriers.mu.Unlock()
		for _, p := range h.carriers.placed {
			if p.To == number {
				got = p
				return true
			}
		}
		return false
	})
	return got
}

// transferredToNumber has ann, on call id, transfer it blind to farNumber, and checks she is
// released at once while the caller hears the hold tone; it returns the leg placed.
func transferredToNumber(t *testing.T, h *testHub, ann *agentsim.SimSoftphone, id string, stream *testStream) Placement {
	t.Helper()
	stream.reset()
	ann.Send(transferTo(farNumber))
	if m := expect(t, ann, "ann released", typed(signal.TypeEnded, id)); m.Reason != held.ReasonTransferred {
		t.Fatalf("ann: %s", m.Raw)
	}
	expect(t, ann, "ann wraps up", availability("wrap-up"))
	redistest.Eventually(t, 5*time.Second, "the hold tone while the number rings", func() bool {
		return media.Goertzel(stream.recent(800), media.HoldToneHz) > 0.01
	})
	leg := h.placedTo(t, farNumber)
	if leg.CallID == "" || leg.CallID == id || leg.Agent != "" || leg.MediaURL != h.url {
		t.Fatalf("leg placed as %+v: want a new call id, no agent, media to the caller's holder %s", leg, h.url)
	}
	return leg
}

// TestBlindTransferToNumber: ann transfers her caller to a phone number. She is released at
// once; the caller hears the hold tone until the far end answers, then the two carrier legs
// hear each other; the call's history names the leg; the far end hanging up ends the caller's
// call.
func TestBlindTransferToNumber(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, stream := answeredBy(t, h, ann, annHz)

	leg := transferredToNumber(t, h, ann, id, stream)
	ctx := context.Background()
	if base, err := h.MediaBase(ctx, leg.CallID); err != nil || base != "" {
		t.Fatalf("the leg's media goes to %q (%v), want this instance", base, err)
	}
	if o, err := h.st.Offer(ctx, id); err != nil || o.Agent != "" || o.NumberLeg != leg.CallID || o.Number != farNumber {
		t.Fatalf("the caller's offer after the transfer: %+v, %v", o, err)
	}

	stream.reset()
	far := startStream(t, h.Hub, leg.CallID, farHz)
	redistest.Eventually(t, 5*time.Second, "the caller and the far end hear each other", func() bool {
		return power(stream.recent(3200), farHz) > heardPower && len(far.recent(3200)) >= 3200 &&
			power(far.recent(3200), callerHz) > heardPower
	})
	// What the caller hears around the switch from the hold tone to the far end.
	t.Logf("the caller's longest silence from the hold tone to the far end: %v", stream.longestGap().Round(time.Millisecond))
	if p := media.Goertzel(stream.recent(1600), media.HoldToneHz); p > absentPower {
		t.Errorf("the caller still hears the hold tone once bridged (%.4f)", p)
	}
	if p := power(stream.recent(3200), annHz); p > absentPower {
		t.Errorf("the caller still hears ann (%.4f)", p)
	}
	c, err := h.st.Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := "transferred by agent ann to " + farNumber + " (call " + leg.CallID + ")"
	found := false
	for _, e := range c.History {
		found = found || e.Detail == want
	}
	if !found {
		t.Errorf("history of the call lacks %q: %+v", want, c.History)
	}

	// A second stream for the leg is refused: one far end per leg.
	if _, err := h.StreamStarted(ctx, leg.CallID, &testStream{}); err == nil {
		t.Error("a second stream for the leg was taken")
	}

	far.hangUp()
	redistest.Eventually(t, 5*time.Second, "the caller's call ended with the far end", func() bool {
		return stream.isClosed() && h.carriers.has(&h.carriers.hungUp, id)()
	})
	redistest.Eventually(t, 5*time.Second, "the offers ended", func() bool {
		o, err := h.st.Offer(ctx, id)
		l, lerr := h.st.Offer(ctx, leg.CallID)
		return err == nil && lerr == nil && o.State == agentdb.OfferEnded && l.State == agentdb.OfferEnded
	})
	expect(t, ann, "ann free again", availability("available"))
}

// TestBlindTransferToNumberCallerHangsUp: the caller hanging up ends the far end's leg.
func TestBlindTransferToNumberCallerHangsUp(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, stream := answeredBy(t, h, ann, annHz)
	leg := transferredToNumber(t, h, ann, id, stream)
	far := startStream(t, h.Hub, leg.CallID, farHz)
	redistest.Eventually(t, 5*time.Second, "the far end hears the caller", func() bool {
		return power(far.recent(3200), callerHz) > heardPower
	})
	stream.hangUp()
	redistest.Eventually(t, 5*time.Second, "the far end's leg hung up and closed", func() bool {
		return far.isClosed() && h.carriers.has(&h.carriers.hungUp, leg.CallID)()
	})
}

// TestBlindTransferToNumberNotTaken: a number that is busy, does not answer, or that no
// carrier would call gives the caller back to the agent who transferred it, rung again; a
// caller hanging up while the number rings cancels the leg.
func TestBlindTransferToNumberNotTaken(t *testing.T) {
	for _, tt := range []struct {
		name   string
		refuse bool       // the carrier side refuses to place the leg
		state  call.State // else the carrier reports the leg ended so
	}{
		{name: "busy", state: call.Busy},
		{name: "no-answer", state: call.NoAnswer},
		{name: "failed", state: call.Failed},
		{name: "refused", refuse: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, "")
			ann := h.agent(t, "ann", annHz)
			id, stream := answeredBy(t, h, ann, annHz)
			if tt.refuse {
				h.carriers.mu.Lock()
				h.carriers.placeErr = &PlaceError{Reason: "no carrier took the call"}
				h.carriers.mu.Unlock()
			}
			leg := transferredToNumber(t, h, ann, id, stream)
			if !tt.refuse {
				h.callChanged(leg.CallID, tt.state)
			}
			expect(t, ann, "ann rung again", typed(signal.TypeRinging, id))
			if p := media.Goertzel(stream.recent(800), media.HoldToneHz); p < 0.01 {
				t.Errorf("the caller does not hear the hold tone while ann rings again (%.4f)", p)
			}
			ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
			expect(t, ann, "ann has the call again", typed(signal.TypeCall, id))
			talking(t, stream, ann, annHz, "the caller and ann hear each other again")
			o, err := h.st.Offer(context.Background(), id)
			if err != nil || o.Agent != "ann" || o.State != agentdb.OfferAnswered || o.NumberLeg != "" {
				t.Fatalf("offer after the ring-back: %+v, %v", o, err)
			}
			c, err := h.st.Call(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			back := false
			for _, e := range c.History {
				back = back || strings.Contains(e.Detail, "did not connect") && strings.Contains(e.Detail, "back to agent ann")
			}
			if !back {
				t.Errorf("the history does not say the transfer failed: %+v", c.History)
			}
			// A stream for the failed leg, arriving late, is refused.
			if _, err := h.StreamStarted(context.Background(), leg.CallID, &testStream{}); err == nil {
				t.Error("a stream for a failed leg was taken")
			}
		})
	}

	t.Run("caller-hangs-up-while-ringing", func(t *testing.T) {
		h := newTestHub(t, "")
		ann := h.agent(t, "ann", annHz)
		id, stream := answeredBy(t, h, ann, annHz)
		leg := transferredToNumber(t, h, ann, id, stream)
		stream.hangUp()
		redistest.Eventually(t, 5*time.Second, "the ringing leg hung up", h.carriers.has(&h.carriers.hungUp, leg.CallID))
		if h.leg(leg.CallID) != nil {
			t.Error("the hub still tracks the leg")
		}
	})
}

// TestBlindTransferToNumberNoAgentBack: when the agent who transferred the call cannot take
// it back (offline), a leg that does not connect sends the caller to the queue, and the
// next agent takes it.
func TestBlindTransferToNumberNoAgentBack(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, stream := answeredBy(t, h, ann, annHz)
	leg := transferredToNumber(t, h, ann, id, stream)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "offline"})
	redistest.Eventually(t, 5*time.Second, "ann offline", func() bool {
		p, _ := h.st.Presence(context.Background(), "ann")
		return p.State == agentdb.Offline || p.State == agentdb.AvailabilityUnknown
	})
	h.callChanged(leg.CallID, call.Busy)
	bob := h.agent(t, "bob", bobHz)
	expect(t, bob, "bob rung from the queue", typed(signal.TypeRinging, id))
	bob.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, bob, "bob has the call", typed(signal.TypeCall, id))
	talking(t, stream, bob, bobHz, "the caller and bob hear each other")
}

// A late "transferred" for a call that rings its agent again (a transfer that did not connect
// rings the transferring agent back) leaves the ringing alone: it is about the call the agent
// was on, and its notices come by several paths in no set order.
func TestLateTransferredNoticeLeavesARingBackRinging(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", 440)
	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	h.handle(context.Background(), notice{Type: noticeEnded, Call: id, Agent: "ann", Reason: held.ReasonTransferred})
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	if m := expect(t, ann, "the call answered", func(m agentsim.SoftphoneMessage) bool {
		return m.CallID == id && (m.Type == signal.TypeCall || m.Type == signal.TypeError || m.Type == signal.TypeEnded)
	}); m.Type != signal.TypeCall {
		t.Fatalf("the ringing call after a late transferred notice: %s", m.Raw)
	}
}
