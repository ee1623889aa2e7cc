package agents

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/media"
)

// A caller transferred to a phone number outlives the instance bridging it (anchor.go, held's
// resumeNumber): two hubs on one Redis, the caller's holder a killed or handing over, b
// claiming the caller's call with its leg.

// bridgedToNumberOnA has ann, on a, answer a call held by a and transfer it to farNumber; the
// far end answers (its stream on a) and both legs hear each other. It waits until the answer
// is stored, so that a claimer re-points the leg too.
func bridgedToNumberOnA(t *testing.T, a *testHub) (id string, leg Placement, caller, far *testStream) {
	t.Helper()
	ann := a.agent(t, "ann", annHz)
	id, caller = answeredBy(t, a, ann, annHz)
	leg = transferredToNumber(t, a, ann, id, caller)
	far = startStream(t, a.Hub, leg.CallID, farHz)
	bothHear(t, caller, far, "the caller and the far end hear each other on a")
	redistest.Eventually(t, 5*time.Second, "the leg's answer stored", func() bool {
		o, err := a.st.Offer(context.Background(), id)
		return err == nil && o.NumberAnswered
	})
	return id, leg, caller, far
}

// bothHear waits until the caller's stream carries the far end's tone and the far end's the
// caller's, in their latest 400 ms, and returns how long that took.
func bothHear(t *testing.T, caller, far *testStream, what string) time.Duration {
	t.Helper()
	return redistest.Eventually(t, 15*time.Second, what, func() bool {
		c, f := caller.recent(3200), far.recent(3200)
		return len(c) == 3200 && power(c, farHz) > heardPower && len(f) == 3200 && power(f, callerHz) > heardPower
	})
}

// rebridgedOnB has the carrier's new streams of both legs start on b, once b asked for them,
// and checks both sides hear each other again, frames untouched (no hold tone, nothing else).
func rebridgedOnB(t *testing.T, b *testHub, id, legID string, since time.Time, what string) (caller, far *testStream) {
	t.Helper()
	redistest.Eventually(t, 5*time.Second, "b re-points both legs", func() bool {
		return b.carriers.has(&b.carriers.repointed, id)() && b.carriers.has(&b.carriers.repointed, legID)()
	})
	repointed := time.Since(since)
	caller = startStream(t, b.Hub, id, callerHz)
	far = startStream(t, b.Hub, legID, farHz)
	bothHear(t, caller, far, "the caller and the far end hear each other on b")
	t.Logf("%s: both legs re-pointed %v after it; both sides hear each other again %v after it "+
		"(the new streams' longest silence: caller %v, far end %v)", what, repointed.Round(time.Millisecond),
		time.Since(since).Round(time.Millisecond), caller.longestGap().Round(time.Millisecond), far.longestGap().Round(time.Millisecond))
	if p := media.Goertzel(caller.recent(1600), media.HoldToneHz); p > absentPower {
		t.Errorf("the caller hears the hold tone once bridged again (%.4f)", p)
	}
	return caller, far
}

// nothingHungUp fails if any of hubs asked a carrier to hang up any of ids.
func nothingHungUp(t *testing.T, ids []string, hubs ...*testHub) {
	t.Helper()
	for _, h := range hubs {
		for _, id := range ids {
			if h.carriers.has(&h.carriers.hungUp, id)() {
				t.Errorf("%s was hung up by %s", id, h.opts.Instance)
			}
		}
	}
}

// TestNumberBridgeSurvivesTheDeathOfItsHolder: a caller bridged to a number on a; a is killed.
// b claims the caller's call with its leg, re-points both, and bridges the new streams: both
// sides hear each other again, nothing was hung up; the far end hanging up later ends it all.
func TestNumberBridgeSurvivesTheDeathOfItsHolder(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	id, leg, oldCaller, oldFar := bridgedToNumberOnA(t, a)

	killed := time.Now()
	oldCaller.cut()
	oldFar.cut()
	a.kill()
	ctx := context.Background()
	redistest.Eventually(t, 5*time.Second, "b holds the call", func() bool {
		o, err := b.st.Offer(ctx, id)
		return err == nil && o.Holder == b.opts.Instance
	})
	if base, err := b.MediaBase(ctx, leg.CallID); err != nil || base != "" {
		t.Fatalf("the leg's media goes to %q (%v), want b", base, err)
	}
	if ids, _ := b.st.Anchored(ctx, b.opts.Instance); len(ids) != 1 || ids[0] != id {
		t.Fatalf("b anchors %v: want the caller's call alone", ids)
	}
	caller, far := rebridgedOnB(t, b, id, leg.CallID, killed, "killed")
	nothingHungUp(t, []string{id, leg.CallID}, a, b)
	if o, err := b.st.Offer(ctx, id); err != nil || o.State != agentdb.OfferAnswered || o.NumberLeg != leg.CallID {
		t.Fatalf("the caller's offer on b: %+v, %v", o, err)
	}

	far.hangUp()
	redistest.Eventually(t, 5*time.Second, "the caller's call ended with the far end", func() bool {
		return caller.isClosed() && b.carriers.has(&b.carriers.hungUp, id)()
	})
	redistest.Eventually(t, 5*time.Second, "the offers ended", func() bool {
		o, err := b.st.Offer(ctx, id)
		l, lerr := b.st.Offer(ctx, leg.CallID)
		return err == nil && lerr == nil && o.State == agentdb.OfferEnded && l.State == agentdb.OfferEnded
	})
}

// TestNumberBridgeGracefulStopHandsItOver: a, bridging a caller to a number, stops gracefully:
// b claims both legs and re-points them; a lets go of each old stream quietly when the carrier
// replaces it, and Handover returns; nothing is hung up or ended.
func TestNumberBridgeGracefulStopHandsItOver(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	id, leg, oldCaller, oldFar := bridgedToNumberOnA(t, a)
	// The carrier: a re-point replaces the old stream (it stops, the new one starts).
	old := map[string]*testStream{id: oldCaller, leg.CallID: oldFar}
	b.carriers.mu.Lock()
	b.carriers.onRepoint = func(callID, _ string) {
		if s := old[callID]; s != nil {
			go s.hangUp()
		}
	}
	b.carriers.mu.Unlock()

	handedOver := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(handedOver)
		a.Handover(context.Background())
	}()
	caller, far := rebridgedOnB(t, b, id, leg.CallID, start, "handed over")
	select {
	case <-handedOver:
	case <-time.After(10 * time.Second):
		t.Fatal("Handover did not return")
	}
	a.stop()
	bothHear(t, caller, far, "still bridged on b once a stopped")
	nothingHungUp(t, []string{id, leg.CallID}, a, b)
	ctx := context.Background()
	o, err := b.st.Offer(ctx, id)
	l, lerr := b.st.Offer(ctx, leg.CallID)
	if err != nil || lerr != nil || o.State != agentdb.OfferAnswered || o.Holder != b.opts.Instance || l.State != agentdb.OfferAnswered || l.Holder != b.opts.Instance {
		t.Fatalf("offers after the hand-over: caller %+v (%v), leg %+v (%v)", o, err, l, lerr)
	}

	caller.hangUp() // the caller hanging up on b hangs up the leg
	redistest.Eventually(t, 5*time.Second, "the leg hung up with the caller", func() bool {
		return far.isClosed() && b.carriers.has(&b.carriers.hungUp, leg.CallID)()
	})
}

// TestNumberBridgeRefusedRepoint: one leg ended while its holder was dying, so the carrier
// refuses its re-point: the other leg is ended as a hang-up of the refused one ends the bridge
// (the far end gone: the caller is hung up; the caller gone: the leg is hung up); the refused
// one is left to the reconciler (not hung up), and both offers end.
func TestNumberBridgeRefusedRepoint(t *testing.T) {
	for _, refused := range []string{"leg", "caller"} {
		t.Run(refused, func(t *testing.T) {
			ns := redistest.Namespace(t)
			a := newTestHub(t, ns)
			b := newTestHub(t, ns)
			id, leg, oldCaller, oldFar := bridgedToNumberOnA(t, a)
			gone, other := leg.CallID, id
			if refused == "caller" {
				gone, other = id, leg.CallID
			}
			b.carriers.mu.Lock()
			b.carriers.refuse = []string{gone}
			b.carriers.mu.Unlock()
			oldCaller.cut()
			oldFar.cut()
			a.kill()
			ctx := context.Background()
			redistest.Eventually(t, 5*time.Second, "the other leg hung up, both offers ended", func() bool {
				o, err := b.st.Offer(ctx, id)
				l, lerr := b.st.Offer(ctx, leg.CallID)
				return b.carriers.has(&b.carriers.hungUp, other)() && err == nil && lerr == nil &&
					o.State == agentdb.OfferEnded && l.State == agentdb.OfferEnded
			})
			if b.carriers.has(&b.carriers.hungUp, gone)() {
				t.Errorf("the %s, whose re-point was refused, was hung up; the reconciler settles it", refused)
			}
			if b.leg(leg.CallID) != nil || b.held(id) != nil {
				t.Error("b still holds the call or its leg")
			}
		})
	}
}

// TestRingingNumberLegSurvivesTheDeathOfItsHolder: the caller's holder b dies while the
// number still rings. a holds the caller again (the hold tone, once its stream is back)
// without re-pointing the unanswered leg, whose answer is streamed to a (its offer names a):
// then both hear each other. A leg that fails instead gives the caller back to ann, as before
// the death, even when the carrier said so before a claimed the call (its record says it).
func TestRingingNumberLegSurvivesTheDeathOfItsHolder(t *testing.T) {
	for _, name := range []string{"answers", "busy", "busy-while-nobody-held-it"} {
		t.Run(name, func(t *testing.T) {
			ns := redistest.Namespace(t)
			a := newTestHub(t, ns)
			b := newTestHub(t, ns)
			ann, id, oldCaller := callOnAOverB(t, a, b)
			leg := transferredToNumber(t, b, ann, id, oldCaller)
			killed := time.Now()
			oldCaller.cut()
			b.kill()
			ctx := context.Background()
			if name == "busy-while-nobody-held-it" {
				// The carrier's word comes before a claims the call: only the record keeps it.
				if _, err := a.st.Apply(ctx, call.Event{ID: leg.CallID + ":busy", CallID: leg.CallID, State: call.Busy}); err != nil {
					t.Fatal(err)
				}
			}
			redistest.Eventually(t, 5*time.Second, "a re-points the caller", a.carriers.has(&a.carriers.repointed, id))
			if base, err := a.MediaBase(ctx, leg.CallID); err != nil || base != "" {
				t.Fatalf("the ringing leg's media goes to %q (%v), want a", base, err)
			}
			caller := startStream(t, a.Hub, id, callerHz)
			redistest.Eventually(t, 5*time.Second, "the hold tone again on a", func() bool {
				return media.Goertzel(caller.recent(800), media.HoldToneHz) > 0.01
			})
			t.Logf("ringing leg: the caller hears the hold tone again %v after the kill", time.Since(killed).Round(time.Millisecond))
			if a.carriers.has(&a.carriers.repointed, leg.CallID)() {
				t.Error("an unanswered leg was re-pointed")
			}
			if name != "answers" {
				if name == "busy" {
					a.callChanged(leg.CallID, call.Busy)
				}
				expect(t, ann, "ann rung again", typed(signal.TypeRinging, id))
				rec, err := a.st.Call(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				busy := false
				for _, e := range rec.History {
					busy = busy || strings.Contains(e.Detail, "did not connect (busy)")
				}
				if !busy {
					t.Errorf("the history does not say the number was busy (not the no-answer timeout): %+v", rec.History)
				}
				return
			}
			far := startStream(t, a.Hub, leg.CallID, farHz) // the far end answers
			bothHear(t, caller, far, "the caller and the far end hear each other on a")
			nothingHungUp(t, []string{id, leg.CallID}, a)
			redistest.Eventually(t, 5*time.Second, "the answer stored", func() bool {
				o, err := a.st.Offer(ctx, id)
				return err == nil && o.NumberAnswered
			})
		})
	}
}
