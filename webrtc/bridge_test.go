package webrtc_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// The carrier side's media receiver (webhooks.MediaReceiver), restated so the check needs no
// import of webhooks.
var _ interface {
	Audio(ulaw []byte)
	DTMF(digit string)
	Stopped()
} = (*webrtc.Bridge)(nil)

// fakeLeg is a CarrierLeg that records every frame it is sent.
type fakeLeg struct {
	mu     sync.Mutex
	frames [][]byte
	fail   atomic.Bool
}

func (l *fakeLeg) SendAudio(ulaw []byte) error {
	if l.fail.Load() {
		return errors.New("carrier gone")
	}
	l.mu.Lock()
	l.frames = append(l.frames, bytes.Clone(ulaw))
	l.mu.Unlock()
	return nil
}

func (l *fakeLeg) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.frames)
}

// audio returns frames [from, to) joined.
func (l *fakeLeg) audio(from, to int) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Concat(l.frames[from:to]...)
}

func (l *fakeLeg) all() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.frames)
}

// eventRecorder keeps a bridge's events.
type eventRecorder struct {
	mu     sync.Mutex
	events []webrtc.Event
}

func (r *eventRecorder) on(e webrtc.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *eventRecorder) get() []webrtc.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *eventRecorder) count(k webrtc.EventKind) int {
	n := 0
	for _, e := range r.get() {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// startCarrier feeds b.Audio a tone every 20 ms from its own goroutine, as the carrier's
// WebSocket read loop would, reusing one buffer as that loop does. The returned stop waits
// for the goroutine.
func startCarrier(b *webrtc.Bridge, hz float64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tone := media.NewTone(hz, 0.5)
		buf := make([]byte, media.FrameSamples)
		ticker := time.NewTicker(20 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
			}
			tone.Read(buf)
			b.Audio(buf)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

type bridgedCall struct {
	bridge *webrtc.Bridge
	peer   *webrtc.Peer
	agent  *agentsim.SimAgent
	leg    *fakeLeg
	events *eventRecorder
}

// newBridgedCall connects a SimAgent (440 Hz) to a Peer and bridges it to a fake carrier leg
// fed with 1 kHz, then waits until audio flows both ways.
func newBridgedCall(t *testing.T) *bridgedCall {
	t.Helper()
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{ToneHz: 440}, nil)
	c := &bridgedCall{peer: peer, agent: agent, leg: &fakeLeg{}, events: &eventRecorder{}}
	c.bridge = webrtc.NewBridge("call-1", c.leg, peer, webrtc.BridgeOptions{OnEvent: c.events.on})
	stop := startCarrier(c.bridge, 1000)
	t.Cleanup(func() {
		stop()
		c.bridge.End()
	})
	c.waitFrames(t, 10)
	return c
}

// waitFrames waits until the leg and the agent have each received n more frames.
func (c *bridgedCall) waitFrames(t *testing.T, n int) {
	t.Helper()
	leg, agent := c.leg.count()+n, c.agent.FramesReceived()+n
	redistest.Eventually(t, 5*time.Second, "frames both ways", func() bool {
		return c.leg.count() >= leg && c.agent.FramesReceived() >= agent
	})
}

// dtmfAt returns the first frame index from which 5 frames (the 100 ms tone) carry both
// frequencies, or -1.
func dtmfAt(frames [][]byte, from int, lo, hi float64) int {
	for i := from; i+media.DTMFToneFrames <= len(frames); i++ {
		w := slices.Concat(frames[i : i+media.DTMFToneFrames]...)
		if media.Goertzel(w, lo) > 0.02 && media.Goertzel(w, hi) > 0.02 {
			return i
		}
	}
	return -1
}

func TestBridgeCarriesBothDirections(t *testing.T) {
	c := newBridgedCall(t)
	c.agent.ResetRecording()
	from := c.leg.count()
	c.waitFrames(t, 40)
	leg := c.leg.audio(from, c.leg.count())

	if p := c.agent.DominantPower(1000); p < 0.05 {
		t.Errorf("agent hears the caller's 1 kHz at %.4f, want > 0.05", p)
	}
	if p := c.agent.DominantPower(440); p > 0.01 {
		t.Errorf("agent hears 440 Hz at %.4f, want < 0.01", p)
	}
	if p := media.MiddlePower(leg, 440); p < 0.05 {
		t.Errorf("carrier hears the agent's 440 Hz at %.4f, want > 0.05", p)
	}
	if p := media.MiddlePower(leg, 1000); p > 0.01 {
		t.Errorf("carrier hears 1 kHz at %.4f, want < 0.01", p)
	}
	for i, f := range c.leg.all() {
		if len(f) != media.FrameSamples {
			t.Fatalf("leg frame %d has %d bytes", i, len(f))
		}
	}
	s := c.bridge.Stats()
	if s.CarrierToAgent < 40 || s.AgentToCarrier < 40 || s.DroppedToCarrier != 0 {
		t.Errorf("stats %+v", s)
	}
	if s.CarrierToAgentLatency.Count() != s.CarrierToAgent || s.AgentToCarrierLatency.Count() != s.AgentToCarrier {
		t.Errorf("latency counts %d/%d for %d/%d frames", s.CarrierToAgentLatency.Count(),
			s.AgentToCarrierLatency.Count(), s.CarrierToAgent, s.AgentToCarrier)
	}
	t.Logf("carrier->agent %d frames, p50 %v p99 %v; agent->carrier %d frames, p50 %v p99 %v",
		s.CarrierToAgent, s.CarrierToAgentLatency.Quantile(0.5), s.CarrierToAgentLatency.Quantile(0.99),
		s.AgentToCarrier, s.AgentToCarrierLatency.Quantile(0.5), s.AgentToCarrierLatency.Quantile(0.99))
}

func TestBridgeMute(t *testing.T) {
	c := newBridgedCall(t)
	c.bridge.SetMuted(true)
	from := c.leg.count() + 1 // one frame may have been on its way
	c.waitFrames(t, 30)
	muted := c.leg.audio(from, c.leg.count())
	if p := media.Goertzel(muted, 440); p > 0.001 {
		t.Errorf("muted: carrier hears 440 Hz at %.5f, want < 0.001", p)
	}
	if !bytes.Equal(muted, bytes.Repeat([]byte{media.Silence}, len(muted))) {
		t.Error("muted frames are not mu-law silence")
	}
	if p := media.MiddlePower(c.agent.Recording(), 1000); p < 0.05 {
		t.Errorf("muted agent no longer hears the caller: %.4f", p)
	}

	c.bridge.SetMuted(false)
	from = c.leg.count() + 1
	c.waitFrames(t, 20)
	if p := media.MiddlePower(c.leg.audio(from, c.leg.count()), 440); p < 0.05 {
		t.Errorf("unmuted: carrier hears 440 Hz at %.4f, want > 0.05", p)
	}
}

func TestBridgeHold(t *testing.T) {
	c := newBridgedCall(t)
	c.bridge.SetHeld(true)
	if !c.bridge.Held() {
		t.Fatal("Held() = false after SetHeld(true)")
	}
	held := c.leg.count()
	c.waitFrames(t, 3)
	c.agent.ResetRecording()
	c.waitFrames(t, 40)

	if p := c.agent.DominantPower(1000); p > 0.01 {
		t.Errorf("held: agent hears the caller's 1 kHz at %.4f, want < 0.01", p)
	}
	frames := c.leg.all()
	if p := media.Goertzel(slices.Concat(frames[held+1:]...), 440); p > 0.001 {
		t.Errorf("held: carrier hears the agent's 440 Hz at %.5f, want < 0.001", p)
	}
	best := 0.0
	for i := held; i+media.HoldBeepFrames <= len(frames); i++ {
		best = max(best, media.Goertzel(slices.Concat(frames[i:i+media.HoldBeepFrames]...), media.HoldToneHz))
	}
	if best < 0.01 {
		t.Errorf("held: carrier hears the hold tone at %.4f, want > 0.01", best)
	}

	c.bridge.SetHeld(false)
	c.waitFrames(t, 3)
	c.agent.ResetRecording()
	from := c.leg.count()
	c.waitFrames(t, 30)
	if p := c.agent.DominantPower(1000); p < 0.05 {
		t.Errorf("resumed: agent hears 1 kHz at %.4f, want > 0.05", p)
	}
	if p := media.MiddlePower(c.leg.audio(from, c.leg.count()), 440); p < 0.05 {
		t.Errorf("resumed: carrier hears 440 Hz at %.4f, want > 0.05", p)
	}
}

func TestBridgeSendDTMFInBand(t *testing.T) {
	c := newBridgedCall(t)
	from := c.leg.count()
	if err := c.bridge.SendDTMF("5"); err != nil {
		t.Fatal(err)
	}
	c.waitFrames(t, 20)
	frames := c.leg.all()
	at := dtmfAt(frames, from, 770, 1336)
	if at < 0 {
		t.Fatal("carrier never heard 770 + 1336 Hz (digit 5)")
	}
	tone := slices.Concat(frames[at : at+media.DTMFToneFrames]...)
	if p := media.Goertzel(tone, 440); p > 0.001 {
		t.Errorf("the agent's voice is mixed into the digit: 440 Hz at %.4f", p)
	}
	if dtmfAt(frames, from, 697, 1209) >= 0 {
		t.Error("carrier heard digit 1, which was not sent")
	}
	if err := c.bridge.SendDTMF("5x"); !errors.Is(err, media.ErrBadDigit) {
		t.Errorf("SendDTMF(5x) = %v, want media.ErrBadDigit", err)
	}
}

// The agent's keypad reaches us as RFC 4733 events and must reach the carrier as tones.
func TestBridgeAgentRFC4733BecomesInBand(t *testing.T) {
	c := newBridgedCall(t)
	from := c.leg.count()
	if err := c.agent.SendDTMF("9"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "agent digit event", func() bool { return c.events.count(webrtc.EventAgentDTMF) > 0 })
	c.waitFrames(t, 15)
	if n := c.events.count(webrtc.EventAgentDTMF); n != 1 {
		t.Errorf("%d agent digit events for one key press", n)
	}
	for _, e := range c.events.get() {
		if e.Kind == webrtc.EventAgentDTMF && (e.Digit != "9" || e.CallID != "call-1") {
			t.Errorf("event %+v", e)
		}
	}
	if dtmfAt(c.leg.all(), from, 852, 1477) < 0 {
		t.Error("carrier never heard 852 + 1477 Hz (digit 9)")
	}
}

func TestBridgeCarrierDTMFIsAnEvent(t *testing.T) {
	c := newBridgedCall(t)
	c.bridge.DTMF("3")
	got := c.events.get()
	if len(got) != 1 || got[0] != (webrtc.Event{CallID: "call-1", Kind: webrtc.EventCarrierDTMF, Digit: "3"}) {
		t.Errorf("events %+v", got)
	}
}

func TestBridgeEndLeavesPeerForTheNextCall(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{}, nil)
	// Let both ends start reading each other's track (pion starts those goroutines on the
	// first packet), so what is left after End is compared with a settled peer.
	var heard audioRecorder
	peer.SetAgentAudioSink(heard.sink)
	redistest.Eventually(t, 5*time.Second, "both ends reading", func() bool {
		peer.WriteAudio(make([]byte, media.FrameSamples))
		return heard.frames() > 0 && agent.FramesReceived() > 0
	})
	peer.SetAgentAudioSink(nil)
	before := goleak.IgnoreCurrent()

	for call := range 2 {
		leg, events := &fakeLeg{}, &eventRecorder{}
		b := webrtc.NewBridge("call", leg, peer, webrtc.BridgeOptions{OnEvent: events.on})
		stop := startCarrier(b, 1000)
		redistest.Eventually(t, 5*time.Second, "frames both ways", func() bool {
			return leg.count() >= 10 && b.Stats().CarrierToAgent >= 10
		})
		if call == 0 {
			b.End()
			b.End()
		} else {
			b.Stopped()
			b.End()
		}
		got := events.get()
		if len(got) != 1 || got[0].Kind != webrtc.EventEnded || got[0].CarrierStopped != (call == 1) {
			t.Errorf("call %d: events %+v, want one EventEnded", call, got)
		}

		// After the end nothing crosses: the agent keeps talking, the carrier keeps sending.
		n, s := leg.count(), b.Stats()
		sent := agent.FramesSent()
		redistest.Eventually(t, 5*time.Second, "agent talks on", func() bool { return agent.FramesSent() >= sent+10 })
		stop()
		if leg.count() != n || b.Stats().CarrierToAgent != s.CarrierToAgent {
			t.Errorf("call %d: frames crossed after the end", call)
		}
		if peer.State() != webrtc.PeerStateConnected {
			t.Fatalf("call %d: ending the bridge changed the peer to %v", call, peer.State())
		}
		// The bridge's own goroutine is gone (pion's for the live peer were there before).
		goleak.VerifyNone(t, before)
	}
}

// Without agent packets (a silent or absent agent) the bridge's clock keeps the carrier fed
// while muted, held or playing digits.
func TestBridgePacesWhenAgentIsSilent(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, err := e.NewPeer(nil) // never negotiated: no agent packets at all
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	leg := &fakeLeg{}
	b := webrtc.NewBridge("call", leg, peer, webrtc.BridgeOptions{})
	defer b.End()

	b.Audio(make([]byte, media.FrameSamples))
	if s := b.Stats(); s.DroppedToAgent != 1 || s.CarrierToAgent != 0 {
		t.Errorf("frame to an unconnected agent: stats %+v", s)
	}

	b.SetMuted(true)
	redistest.Eventually(t, 5*time.Second, "silence while muted", func() bool { return leg.count() >= 10 })
	for i, f := range leg.all() {
		if !bytes.Equal(f, bytes.Repeat([]byte{media.Silence}, media.FrameSamples)) {
			t.Fatalf("frame %d is not silence", i)
		}
	}

	from := leg.count()
	if err := b.SendDTMF("#"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "the digit", func() bool { return leg.count() >= from+12 })
	if dtmfAt(leg.all(), from, 941, 1477) < 0 {
		t.Error("carrier never heard 941 + 1477 Hz (#)")
	}
	b.SetMuted(false)

	b.SetHeld(true)
	from = leg.count()
	redistest.Eventually(t, 5*time.Second, "the hold tone", func() bool { return leg.count() >= from+15 })
	frames := leg.all()
	best := 0.0
	for i := from; i+media.HoldBeepFrames <= len(frames); i++ {
		best = max(best, media.Goertzel(slices.Concat(frames[i:i+media.HoldBeepFrames]...), media.HoldToneHz))
	}
	if best < 0.01 {
		t.Errorf("held: hold tone at %.4f, want > 0.01", best)
	}
}

// Browsers may send 10, 30 or 60 ms packets; the carrier gets 20 ms frames of the same audio.
func TestBridgeRechunksAgentAudio(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, err := e.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	leg := &fakeLeg{}
	b := webrtc.NewBridge("call", leg, peer, webrtc.BridgeOptions{})
	defer b.End()

	in := make([]byte, 4*media.FrameSamples)
	for i := range in {
		in[i] = byte(i * 7)
	}
	rest := in
	for _, n := range []int{80, 240, 100, 220} {
		b.FromAgent(rest[:n])
		rest = rest[n:]
	}
	frames := leg.all()
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	for i, f := range frames {
		if len(f) != media.FrameSamples {
			t.Errorf("frame %d: %d bytes", i, len(f))
		}
	}
	if !bytes.Equal(slices.Concat(frames...), in) {
		t.Error("re-chunked audio differs from what the agent sent")
	}

	leg.fail.Store(true)
	b.FromAgent(in[:media.FrameSamples])
	if s := b.Stats(); s.DroppedToCarrier != 1 || s.AgentToCarrier != 4 {
		t.Errorf("after a failed send: stats %+v", s)
	}
}

// The engine tells OnBridges how many bridges are live, once per change and in order, and a
// bridge ended twice counts once.
func TestEngineCountsLiveBridges(t *testing.T) {
	var mu sync.Mutex
	var counts []int
	e := newTestEngine(t, webrtc.EngineOptions{OnBridges: func(live int) {
		mu.Lock()
		defer mu.Unlock()
		counts = append(counts, live)
	}})
	peer, _ := connectAgent(t, e, agentsim.SimAgentOptions{}, nil)
	first := webrtc.NewBridge("call-1", &fakeLeg{}, peer, webrtc.BridgeOptions{})
	second := webrtc.NewBridge("call-2", &fakeLeg{}, peer, webrtc.BridgeOptions{})
	first.End()
	first.End()
	second.Stopped()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(counts, []int{1, 2, 1, 0}) {
		t.Errorf("OnBridges saw %v, want [1 2 1 0]", counts)
	}
}
