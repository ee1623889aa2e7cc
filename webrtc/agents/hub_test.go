package agents

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// TestInboundCallRingsIsAnsweredAndBridged follows an inbound call from the webhook to its
// end: the caller hears the hold tone until the agent answers, then both hear each other;
// mute, hold and the agent's keypad act on what the caller hears; the caller hangs up, the
// agent wraps up and is available again.
func TestInboundCallRingsIsAnsweredAndBridged(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", 440)

	id := h.inbound(t, "+15557654321")
	ring := expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	if ring.From != "+15557654321" {
		t.Fatalf("ringing: %s", ring.Raw)
	}
	if base, err := h.MediaBase(context.Background(), id); err != nil || base != "" {
		t.Fatalf("media of a call for an agent here goes to %q, %v", base, err)
	}
	stream := startStream(t, h.Hub, id, 1000)
	// Hold beeps: two 620 Hz beeps in the first 600 ms of the pattern.
	redistest.Eventually(t, 5*time.Second, "the hold tone", func() bool { return len(stream.recent(1<<20)) >= 4800 })
	if p := power(stream.recent(1 << 20)[:1600], 620); p < 0.01 {
		t.Fatalf("the caller does not hear the hold tone while the agent rings (620 Hz power %.3f)", p)
	}

	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	if m := expect(t, ann, "the call", typed(signal.TypeCall, id)); m.State != "in-progress" {
		t.Fatalf("answered call: %s", m.Raw)
	}
	expect(t, ann, "busy", availability("busy"))
	stream.reset()
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 5*time.Second, "audio both ways", func() bool {
		return len(stream.recent(1<<20)) >= 8000 && len(ann.Agent.Recording()) >= 8000
	})
	if p := power(stream.recent(3200), 440); p < 0.05 {
		t.Errorf("the caller does not hear the agent: 440 Hz power %.3f", p)
	}
	if p := ann.Agent.DominantPower(1000); p < 0.05 {
		t.Errorf("the agent does not hear the caller: 1000 Hz power %.3f", p)
	}

	ann.Send(map[string]any{"type": signal.TypeMute, "on": true})
	expect(t, ann, "muted", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.Muted })
	stream.reset()
	redistest.Eventually(t, 5*time.Second, "muted audio", func() bool { return len(stream.recent(1<<20)) >= 3200 })
	if p := power(stream.recent(3200), 440); p > 0.001 {
		t.Errorf("muted, the caller still hears the agent: 440 Hz power %.4f", p)
	}
	ann.Send(map[string]any{"type": signal.TypeMute, "on": false})
	stream.reset()
	ann.Send(map[string]any{"type": signal.TypeDTMF, "digits": "5"})
	redistest.Eventually(t, 5*time.Second, "the digit 5 in band (770 + 1336 Hz)", func() bool {
		return heard(stream.recent(1<<20), 770, 1336)
	})

	ann.Send(map[string]any{"type": signal.TypeHold, "on": true})
	expect(t, ann, "held", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeCall && m.Held })
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 5*time.Second, "held audio", func() bool { return len(ann.Agent.Recording()) >= 3200 })
	if p := ann.Agent.DominantPower(1000); p > 0.001 {
		t.Errorf("on hold, the agent still hears the caller: %.4f", p)
	}

	stream.hangUp()
	if m := expect(t, ann, "the end", typed(signal.TypeEnded, id)); m.Reason != held.ReasonHangup {
		t.Fatalf("ended: %s", m.Raw)
	}
	expect(t, ann, "wrap-up", availability("wrap-up"))
	expect(t, ann, "available again", availability("available"))
	if p, _ := h.st.Presence(context.Background(), "ann"); p.State != agentdb.Available {
		t.Fatalf("presence after wrap-up: %+v", p)
	}
	c, err := h.st.Call(context.Background(), id)
	if err != nil || c.Agent != "ann" {
		t.Fatalf("the call does not name its agent: %+v %v", c, err)
	}
}

// TestUnansweredCallGoesToTheNextAgent: the longest-idle agent rings first; when it lets the
// call ring out it is set away, and the call rings the next agent.
func TestUnansweredCallGoesToTheNextAgent(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) { o.RingTimeout = 400 * time.Millisecond })
	ann := h.agent(t, "ann", 440)
	bob := h.agent(t, "bob", 440) // idle for less time than ann

	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ann rings first", typed(signal.TypeRinging, id))
	if m := expect(t, ann, "ann's missed call", typed(signal.TypeEnded, id)); m.Reason != held.ReasonMissed {
		t.Fatalf("ann: %s", m.Raw)
	}
	expect(t, ann, "ann away", availability("away"))
	expect(t, bob, "then bob", typed(signal.TypeRinging, id))
	bob.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, bob, "bob has the call", typed(signal.TypeCall, id))
	if p, _ := h.st.Presence(context.Background(), "ann"); p.State != agentdb.Away {
		t.Fatalf("ann after missing a call: %+v", p)
	}
}

// TestDeclinedCallWaitsThenTheCallerIsLetGo: an agent declines; nobody else is there, so the
// caller hears the hold tone until the queue timeout and is then let go politely.
func TestDeclinedCallWaitsThenTheCallerIsLetGo(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) { o.QueueTimeout = 1500 * time.Millisecond })
	ann := h.agent(t, "ann", 440)
	id := h.inbound(t, "+15557654321")
	stream := startStream(t, h.Hub, id, 1000)
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeDecline, "call_id": id})
	if m := expect(t, ann, "declined", typed(signal.TypeEnded, id)); m.Reason != held.ReasonDeclined {
		t.Fatalf("declined: %s", m.Raw)
	}
	redistest.Eventually(t, 5*time.Second, "the caller let go", h.carriers.has(&h.carriers.released, id))
	redistest.Eventually(t, 5*time.Second, "the stream closed", stream.isClosed)
	if o, _ := h.st.Offer(context.Background(), id); o.State != agentdb.OfferEnded {
		t.Fatalf("offer: %+v", o)
	}
	if p, _ := h.st.Presence(context.Background(), "ann"); p.State != agentdb.Available {
		t.Fatalf("ann after declining: %+v", p)
	}
	if n := countType(ann.Messages(), signal.TypeRinging); n != 1 {
		t.Fatalf("the declined call rang ann %d times", n)
	}
}

func countType(msgs []agentsim.SoftphoneMessage, typ string) int {
	n := 0
	for _, m := range msgs {
		if m.Type == typ {
			n++
		}
	}
	return n
}

// TestDialFromTheSoftphone: the agent dials; the call is placed with its media pointed here;
// the far end's stream bridges to the agent; the agent hangs up and the carrier is told.
func TestDialFromTheSoftphone(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", 440)
	ann.Send(map[string]any{"type": signal.TypeDial, "to": "+15551230000"})
	m := expect(t, ann, "the call", typed(signal.TypeCall, ""))
	if m.State != "queued" || m.To != "+15551230000" {
		t.Fatalf("dialled call: %s", m.Raw)
	}
	id := m.CallID
	redistest.Eventually(t, 5*time.Second, "placement", func() bool {
		h.carriers.mu.Lock()
		defer h.carriers.mu.Unlock()
		return len(h.carriers.placed) == 1
	})
	if p := h.carriers.placed[0]; p.CallID != id || p.Agent != "ann" || p.MediaURL != h.url {
		t.Fatalf("placement: %+v", p)
	}
	// A second dial while on the call is refused.
	ann.Send(map[string]any{"type": signal.TypeDial, "to": "+15551230000"})
	if e := expect(t, ann, "refusal", typed(signal.TypeError, "")); e.Code != signal.CodeBusy {
		t.Fatalf("second dial: %s", e.Raw)
	}

	stream := startStream(t, h.Hub, id, 1000)
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 5*time.Second, "audio both ways", func() bool {
		return len(stream.recent(1<<20)) >= 8000 && len(ann.Agent.Recording()) >= 8000
	})
	if p := power(stream.recent(3200), 440); p < 0.05 {
		t.Errorf("the far end does not hear the agent: %.3f", p)
	}
	if p := ann.Agent.DominantPower(1000); p < 0.05 {
		t.Errorf("the agent does not hear the far end: %.3f", p)
	}
	ann.Send(map[string]any{"type": signal.TypeHangup, "call_id": id})
	if m := expect(t, ann, "the end", typed(signal.TypeEnded, id)); m.Reason != held.ReasonAgentHangup {
		t.Fatalf("ended: %s", m.Raw)
	}
	redistest.Eventually(t, 5*time.Second, "the carrier hang-up", h.carriers.has(&h.carriers.hungUp, id))
	redistest.Eventually(t, 5*time.Second, "the stream closed", stream.isClosed)
	expect(t, ann, "available after wrap-up", availability("available"))
}

// TestDialThatNoCarrierTakes: the agent hears why, and is available again at once.
func TestDialThatNoCarrierTakes(t *testing.T) {
	h := newTestHub(t, "")
	h.carriers.placeErr = &PlaceError{Reason: "no carrier took the call"}
	ann := h.agent(t, "ann", 440)
	ann.Send(map[string]any{"type": signal.TypeDial, "to": "+15551230000"})
	m := expect(t, ann, "the call", typed(signal.TypeCall, ""))
	if e := expect(t, ann, "the error", typed(signal.TypeError, "")); e.Code != signal.CodeCarrier || !strings.Contains(e.Message, "no carrier took the call") {
		t.Fatalf("error: %s", e.Raw)
	}
	if e := expect(t, ann, "the end", typed(signal.TypeEnded, m.CallID)); e.Reason != held.ReasonCarrier {
		t.Fatalf("ended: %s", e.Raw)
	}
	expect(t, ann, "available", availability("available"))
	ann.Send(map[string]any{"type": signal.TypeDial, "to": "12345"})
	if e := expect(t, ann, "bad number", typed(signal.TypeError, "")); e.Code != signal.CodeBadRequest {
		t.Fatalf("bad number: %s", e.Raw)
	}
}

// TestReconnectKeepsTheCall: the browser's WebSocket drops mid-call; within the presence TTL
// it signs in again, finds its call in the welcome, renegotiates, and hears the caller again.
func TestReconnectKeepsTheCall(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) { o.PresenceTTL = 3 * time.Second })
	token := agentdb.NewAgentToken("ann")
	h.st.PutAgent(context.Background(), "ann", "Ann", token, true)
	ann := h.signIn(t, token, 440)
	id := h.inbound(t, "+15557654321")
	stream := startStream(t, h.Hub, id, 1000)
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))

	ann.Drop()
	again := h.signIn(t, token, 880)
	welcome := again.Messages()[0]
	if !strings.Contains(string(welcome.Raw), `"call_id":"`+id+`"`) || welcome.State != "busy" {
		t.Fatalf("welcome after reconnect: %s", welcome.Raw)
	}
	again.Agent.ResetRecording()
	stream.reset()
	redistest.Eventually(t, 5*time.Second, "audio again", func() bool {
		return len(again.Agent.Recording()) >= 8000 && len(stream.recent(1<<20)) >= 8000
	})
	if p := again.Agent.DominantPower(1000); p < 0.05 {
		t.Errorf("after reconnecting the agent does not hear the caller: %.3f", p)
	}
	if p := power(stream.recent(3200), 880); p < 0.05 {
		t.Errorf("after reconnecting the caller does not hear the agent's new connection: %.3f", p)
	}
}

// TestSignInIsChecked: a bad token and a foreign page are refused; a second sign-in of the
// same agent replaces the first.
func TestSignInIsChecked(t *testing.T) {
	h := newTestHub(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := agentsim.DialSoftphone(ctx, h.url, "ann.0000", agentsim.SimAgentOptions{LoopbackOnly: true}); err == nil || !strings.Contains(err.Error(), signal.CodeUnauthorized) {
		t.Fatalf("bad token: %v", err)
	}
	hdr := http.Header{"Origin": {"https://evil.example.com"}}
	_, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/agent/ws", hdr)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", err, resp)
	}
	hdr.Set("Origin", h.url)
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/agent/ws", hdr)
	if err != nil {
		t.Fatalf("own origin: %v", err)
	}
	conn.Close()

	// Signing in again (another tab, the same token) replaces the first session. (Rotating
	// the token would end it as revoked: see revoke_test.go.)
	token := agentdb.NewAgentToken("ann")
	h.st.PutAgent(ctx, "ann", "Ann", token, true)
	first := h.signIn(t, token, 440)
	h.signIn(t, token, 440)
	if m := expect(t, first, "replaced", typed(signal.TypeError, "")); m.Code != signal.CodeReplaced {
		t.Fatalf("first session: %s", m.Raw)
	}
	resp, err = http.Get(h.url + "/agent")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte(`data-testid="dial-button"`)) || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("softphone page: %d %q", resp.StatusCode, page[:min(len(page), 80)])
	}
}

// TestQueuedCallReachesAnAgentOnAnotherInstance: the call's media is held by instance B (its
// agent was away when it arrived); the agent becomes available on instance A, the call rings
// there, and once answered its media crosses a relay from B to A, both ways.
func TestQueuedCallReachesAnAgentOnAnotherInstance(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	ann := a.agent(t, "ann", 440)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "away"})
	expect(t, ann, "away", availability("away"))

	id := b.inbound(t, "+15557654321")
	if base, _ := a.MediaBase(context.Background(), id); base != b.url {
		t.Fatalf("a queued call's media should stay with the instance that took it: %q", base)
	}
	stream := startStream(t, b.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAvailability, "state": "available"})
	expect(t, ann, "ringing across instances", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	stream.reset()
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 5*time.Second, "audio through the relay", func() bool {
		return len(stream.recent(1<<20)) >= 8000 && len(ann.Agent.Recording()) >= 8000
	})
	if p := power(stream.recent(3200), 440); p < 0.05 {
		t.Errorf("the caller does not hear the agent on the other instance: %.3f", p)
	}
	if p := ann.Agent.DominantPower(1000); p < 0.05 {
		t.Errorf("the agent does not hear the caller on the other instance: %.3f", p)
	}
	ann.Send(map[string]any{"type": signal.TypeHangup, "call_id": id})
	redistest.Eventually(t, 5*time.Second, "the holder hangs up", b.carriers.has(&b.carriers.hungUp, id))
	redistest.Eventually(t, 5*time.Second, "the stream closed", stream.isClosed)
}

// TestStreamsOfCallsTheAgentsDoNotHave: a stream for a call the agents never saw says so
// (the wiring then takes it without an agent); one for a call held by another instance is
// refused, as the carrier was told to send it there.
func TestStreamsOfCallsTheAgentsDoNotHave(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns)
	if _, err := a.StreamStarted(context.Background(), store.NewCallID(), &testStream{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown call: %v", err)
	}
	id := b.inbound(t, "+15557654321") // nobody available: held by b
	if _, err := a.StreamStarted(context.Background(), id, &testStream{}); !errors.Is(err, errNotHere) {
		t.Fatalf("a call held elsewhere: %v", err)
	}
}
