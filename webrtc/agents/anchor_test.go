package agents

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// Calls outliving the instance that carries their media (anchor.go): two hubs on one Redis,
// one of them killed (its connections cut without a goodbye, its heartbeat stopped) or
// handing over; the fake carrier side plays the carrier's re-point by starting a new stream
// on the instance that asked for it.

// hearEachOther waits until the caller's stream carries the agent's tone and the agent hears
// the caller's, in their latest 400 ms, and returns how long that took.
func hearEachOther(t *testing.T, stream *testStream, p *agentsim.SimSoftphone, callerHz, agentHz float64, what string) time.Duration {
	t.Helper()
	return redistest.Eventually(t, 15*time.Second, what, func() bool {
		sent := stream.recent(3200)
		rec := p.Agent.Recording()
		return len(sent) == 3200 && power(sent, agentHz) > 0.05 &&
			len(rec) >= 3200 && power(rec[len(rec)-3200:], callerHz) > 0.05
	})
}

// callOnAOverB sets up an answered call held by b (its media) with its agent on a (through the
// relay), audio checked both ways.
func callOnAOverB(t *testing.T, a, b *testHub) (*agentsim.SimSoftphone, string, *testStream) {
	t.Helper()
	ann := a.agent(t, "ann", 440)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "away"})
	expect(t, ann, "away", availability("away"))
	id := b.inbound(t, "+15557654321")
	stream := startStream(t, b.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "available"})
	expect(t, ann, "ringing across instances", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	hearEachOther(t, stream, ann, 1000, 440, "audio through the relay")
	return ann, id, stream
}

func noEnded(t *testing.T, p *agentsim.SimSoftphone, id string) {
	t.Helper()
	for _, m := range p.Messages() {
		if m.Type == signal.TypeEnded && m.CallID == id {
			t.Fatalf("the agent was told the call ended: %s", m.Raw)
		}
	}
}

// TestCallSurvivesTheDeathOfItsHolder: the agent is on A, the call's media on B; B is killed.
// A claims the call, has the carrier re-point it, and the agent, whose relay broke, is joined
// to the new stream: audio both ways again, the call never ended or hung up.
func TestCallSurvivesTheDeathOfItsHolder(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	ann, id, old := callOnAOverB(t, a, b)

	killed := time.Now()
	old.cut()
	b.kill()
	redistest.Eventually(t, 5*time.Second, "A re-points the call", a.carriers.has(&a.carriers.repointed, id))
	claimed := time.Since(killed)
	if o, err := a.st.Offer(context.Background(), id); err != nil || o.Holder != a.opts.Instance || o.State != agentdb.OfferAnswered {
		t.Fatalf("offer after the claim: %+v %v", o, err)
	}
	stream := startStream(t, a.Hub, id, 1000) // the carrier's new stream
	ann.Agent.ResetRecording()
	hearEachOther(t, stream, ann, 1000, 440, "audio both ways after the re-anchor")
	t.Logf("claimed %v after the kill; audio both ways again %v after it", claimed.Round(time.Millisecond),
		time.Since(killed).Round(time.Millisecond))
	noEnded(t, ann, id)
	if a.carriers.has(&a.carriers.hungUp, id)() {
		t.Fatal("the call was hung up")
	}

	// The call goes on as any other: the caller hangs up, the agent wraps up.
	stream.hangUp()
	if m := expect(t, ann, "the end", typed(signal.TypeEnded, id)); m.Reason != held.ReasonHangup {
		t.Fatalf("ended: %s", m.Raw)
	}
	if ids, _ := a.st.Anchored(context.Background(), a.opts.Instance); len(ids) != 0 {
		t.Fatalf("A still anchors %v", ids)
	}
}

// TestCallSurvivesTheDeathOfAgentAndMediaInstance: the agent and the call's media are both on
// B, which is killed. The softphone signs in again on A (as the page does by itself) within
// the presence TTL; A claims the call, the carrier streams it to A, and the new session
// resumes the call with its new PeerConnection.
func TestCallSurvivesTheDeathOfAgentAndMediaInstance(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	token := agentdb.NewAgentToken("ann")
	if _, _, err := b.st.PutAgent(context.Background(), "ann", "Ann", token, true); err != nil {
		t.Fatal(err)
	}
	ann := b.signIn(t, token, 440)
	id := b.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	old := startStream(t, b.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	hearEachOther(t, old, ann, 1000, 440, "audio on B")

	killed := time.Now()
	old.cut()
	b.kill()
	again := a.signIn(t, token, 880)
	welcome := again.Messages()[0]
	if welcome.Type != signal.TypeWelcome || welcome.State != "busy" {
		t.Fatalf("welcome on A: %s", welcome.Raw)
	}
	redistest.Eventually(t, 5*time.Second, "A re-points the call", a.carriers.has(&a.carriers.repointed, id))
	stream := startStream(t, a.Hub, id, 1000)
	hearEachOther(t, stream, again, 1000, 880, "audio both ways on A")
	t.Logf("audio both ways again %v after the kill", time.Since(killed).Round(time.Millisecond))
	noEnded(t, again, id)
	if a.carriers.has(&a.carriers.hungUp, id)() {
		t.Fatal("the call was hung up")
	}
}

// TestRingingCallOfADeadInstanceIsOfferedAgain: a call ringing for an agent on A, its media
// on B; B dies. The call is queued again on A, the old ring ends, and it rings again.
func TestRingingCallOfADeadInstanceIsOfferedAgain(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns, func(o *HubOptions) { o.RingTimeout = 10 * time.Second })
	b := newTestHub(t, ns, func(o *HubOptions) { o.RingTimeout = 10 * time.Second })
	ann := a.agent(t, "ann", 440)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "away"})
	expect(t, ann, "away", availability("away"))
	id := b.inbound(t, "+15557654321")
	old := startStream(t, b.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "available"})
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))

	old.cut()
	b.kill()
	redistest.Eventually(t, 5*time.Second, "A re-points the call", a.carriers.has(&a.carriers.repointed, id))
	if m := expect(t, ann, "the old ring ends", typed(signal.TypeEnded, id)); m.Reason != held.ReasonGone {
		t.Fatalf("old ring: %s", m.Raw)
	}
	stream := startStream(t, a.Hub, id, 1000)
	redistest.Eventually(t, 5*time.Second, "the hold tone again", func() bool { return power(stream.recent(1600), 620) > 0.01 })
	expect(t, ann, "ringing again", typed(signal.TypeRinging, id)) // Expect takes each message once
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	hearEachOther(t, stream, ann, 1000, 440, "audio both ways")
}

// TestRefusedRepointGivesTheCallUp: the carrier refuses to re-point (the call ended meanwhile,
// or its API is down): the agent is told media-lost and freed, the offer ends, and nothing is
// asked of the carrier (the carrier side has the call reconciled).
func TestRefusedRepointGivesTheCallUp(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	a.carriers.mu.Lock()
	a.carriers.repointErr = store.ErrNotFound
	a.carriers.mu.Unlock()
	ann, id, old := callOnAOverB(t, a, b)
	old.cut()
	b.kill()
	if m := expect(t, ann, "the end", typed(signal.TypeEnded, id)); m.Reason != held.ReasonMediaLost {
		t.Fatalf("ended: %s", m.Raw)
	}
	expect(t, ann, "wrap-up", availability("wrap-up"))
	if o, err := a.st.Offer(context.Background(), id); err != nil || o.State != agentdb.OfferEnded {
		t.Fatalf("offer: %+v %v", o, err)
	}
	if a.carriers.has(&a.carriers.hungUp, id)() {
		t.Fatal("a call whose re-point was refused was hung up; the reconciler settles it")
	}
}

// TestGracefulStopHandsTheCallOver: B, holding the call's media, stops gracefully: it says it
// is leaving, A claims the call and re-points it, and B lets go of its stream quietly when the
// carrier stops it (Twilio replaces the stream), without ending the call; the agent on A
// follows the media to A.
func TestGracefulStopHandsTheCallOver(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	ann, id, old := callOnAOverB(t, a, b)
	// The carrier: a re-point replaces the old stream (it stops, the new one starts).
	a.carriers.mu.Lock()
	a.carriers.onRepoint = func(string, string) { go old.hangUp() }
	a.carriers.mu.Unlock()

	handedOver := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(handedOver)
		b.Handover(context.Background())
	}()
	redistest.Eventually(t, 5*time.Second, "A re-points the call", a.carriers.has(&a.carriers.repointed, id))
	stream := startStream(t, a.Hub, id, 1000)
	ann.Agent.ResetRecording()
	hearEachOther(t, stream, ann, 1000, 440, "audio both ways on A")
	t.Logf("handed over: audio both ways again %v after the stop began", time.Since(start).Round(time.Millisecond))
	select {
	case <-handedOver:
	case <-time.After(10 * time.Second):
		t.Fatal("Handover did not return")
	}
	b.stop()
	noEnded(t, ann, id)
	if a.carriers.has(&a.carriers.hungUp, id)() || b.carriers.has(&b.carriers.hungUp, id)() {
		t.Fatal("the call was hung up")
	}
	if o, _ := a.st.Offer(context.Background(), id); o.State != agentdb.OfferAnswered || o.Holder != a.opts.Instance {
		t.Fatalf("offer after the hand-over: %+v", o)
	}
}

// TestTelnyxCallOutlivesItsStream: a Telnyx stream that stops does not end the call (only its
// record does): the agent stays on it, the hub asks for the stream again, and a new stream
// brings the audio back; the call ends when its record says so.
func TestTelnyxCallOutlivesItsStream(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", 440)
	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	first := startStreamOf(t, h.Hub, id, 1000, true)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	hearEachOther(t, first, ann, 1000, 440, "audio")

	first.hangUp() // the stream says stop; the call lives on
	redistest.Eventually(t, 10*time.Second, "the stream asked for again", h.carriers.has(&h.carriers.repointed, id))
	noEnded(t, ann, id)
	second := startStreamOf(t, h.Hub, id, 1000, true)
	ann.Agent.ResetRecording()
	hearEachOther(t, second, ann, 1000, 440, "audio on the new stream")

	if _, err := h.st.Apply(context.Background(), call.Event{ID: id + ":end", CallID: id, State: call.Completed, Carrier: "tw"}); err != nil {
		t.Fatal(err)
	}
	if m := expect(t, ann, "the end", typed(signal.TypeEnded, id)); m.Reason != call.Completed.String() {
		t.Fatalf("ended: %s", m.Raw)
	}
}

// TestInstanceTakenForDeadLetsGo: B, holding the call's media, stalls past its liveness TTL;
// A takes the call over and the carrier streams it to A, while B's old (Telnyx) stream is
// still open. When B heartbeats again it learns it was taken for dead and lets go: it closes
// its old stream and the agent follows the call to A, so only one instance bridges it.
func TestInstanceTakenForDeadLetsGo(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	ann := a.agent(t, "ann", 440)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "away"})
	expect(t, ann, "away", availability("away"))
	id := b.inbound(t, "+15557654321")
	old := startStreamOf(t, b.Hub, id, 1000, true)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "available"})
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	hearEachOther(t, old, ann, 1000, 440, "audio through the relay")

	b.stalled.Store(true)
	redistest.Eventually(t, 5*time.Second, "A re-points the call", a.carriers.has(&a.carriers.repointed, id))
	stream := startStreamOf(t, a.Hub, id, 1000, true)
	b.stalled.Store(false)
	redistest.Eventually(t, 5*time.Second, "B closes its old stream", old.isClosed)
	ann.Agent.ResetRecording()
	hearEachOther(t, stream, ann, 1000, 440, "audio both ways on A")
	noEnded(t, ann, id)
	if b.held(id) != nil {
		t.Fatal("B still holds the call")
	}
}
