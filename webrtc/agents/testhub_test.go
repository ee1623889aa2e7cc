package agents

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// The hub's test rig: a fake carrier side, scripted carrier streams, and hubs on a real Redis
// behind an HTTP server, with simulated softphones signed in to them.

// fakeCarriers records what the hub asks of the carrier side; placing fails when placeErr is
// set.
type fakeCarriers struct {
	mu       sync.Mutex
	placed   []Placement
	hungUp   []string
	released []string
	placeErr error
	// repointed lists the calls whose media the hub asked to move here; repointErr refuses
	// them, and onRepoint plays the carrier (a new stream to the hub) when set.
	// refuse lists calls whose re-point alone is refused (the call ended meanwhile).
	repointed  []string
	repointErr error
	refuse     []string
	onRepoint  func(callID, mediaURL string)
}

func (f *fakeCarriers) Repoint(_ context.Context, id, mediaURL string) error {
	f.mu.Lock()
	f.repointed = append(f.repointed, id)
	err, then := f.repointErr, f.onRepoint
	if slices.Contains(f.refuse, id) {
		err = store.ErrNotFound
	}
	f.mu.Unlock()
	if err == nil && then != nil {
		then(id, mediaURL)
	}
	return err
}

func (f *fakeCarriers) Place(_ context.Context, p Placement) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.placed = append(f.placed, p)
	return f.placeErr
}

func (f *fakeCarriers) Hangup(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hungUp = append(f.hungUp, id)
	return nil
}

func (f *fakeCarriers) Release(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, id)
	return nil
}

func (f *fakeCarriers) has(list *[]string, id string) func() bool {
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.Contains(*list, id)
	}
}

// testStream is a carrier media stream: it plays a tone into the hub's receiver every 20 ms,
// as a carrier streams the caller's voice, and records what the hub sends back.
type testStream struct {
	mu     sync.Mutex
	got    []byte
	at     []time.Time // when the last reset was, then when each frame of got arrived
	closed bool
	stop   chan struct{}
	done   chan struct{}
	// silent: the stream ends without telling the hub (the instance died with it).
	silent bool
	// outlived: a Telnyx stream, whose end does not end the call.
	outlived bool
	stopOnce sync.Once
}

func (s *testStream) CallOutlivesStream() bool { return s.outlived }

func (s *testStream) SendAudio(ulaw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("stream closed")
	}
	s.got = append(s.got, ulaw...)
	s.at = append(s.at, time.Now())
	return nil
}

func (s *testStream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *testStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// recent returns the last n bytes the hub sent.
func (s *testStream) recent(n int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.got[max(0, len(s.got)-n):])
}

// longestGap returns the longest time between two frames the hub sent (or the last reset and
// the first frame after it).
func (s *testStream) longestGap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var longest time.Duration
	for i := 1; i < len(s.at); i++ {
		longest = max(longest, s.at[i].Sub(s.at[i-1]))
	}
	return longest
}

func (s *testStream) reset() {
	s.mu.Lock()
	s.got, s.at = nil, []time.Time{time.Now()} // a silence from the reset on counts
	s.mu.Unlock()
}

// startStream opens a carrier stream for callID on hub, playing hz to it until hangUp.
func startStream(t *testing.T, hub *Hub, callID string, hz float64) *testStream {
	t.Helper()
	return startStreamOf(t, hub, callID, hz, false)
}

// startStreamOf is startStream, for a Telnyx stream when outlived.
func startStreamOf(t *testing.T, hub *Hub, callID string, hz float64, outlived bool) *testStream {
	t.Helper()
	s := &testStream{stop: make(chan struct{}), done: make(chan struct{}), outlived: outlived}
	recv, err := hub.StreamStarted(context.Background(), callID, s)
	if err != nil {
		t.Fatalf("stream for %s: %v", callID, err)
	}
	go func() {
		defer close(s.done)
		tone := media.NewTone(hz, 0.5)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				s.mu.Lock()
				silent := s.silent
				s.mu.Unlock()
				if !silent {
					recv.Stopped()
				}
				return
			case <-tick.C:
				recv.Audio(tone.Frame())
			}
		}
	}()
	t.Cleanup(s.hangUp)
	return s
}

// cut ends the stream without a word to the hub: its instance died.
func (s *testStream) cut() {
	s.mu.Lock()
	s.silent = true
	s.mu.Unlock()
	s.hangUp()
}

// hangUp ends the stream from the carrier's side, as when the caller hangs up.
func (s *testStream) hangUp() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

type testHub struct {
	*Hub
	st         *agentdb.Store
	carriers   *fakeCarriers
	url        string
	kill, stop func()
}

type hubTweak func(*HubOptions)

// newTestHub runs a hub on a fresh namespace (or ns, to share one with another hub) behind
// an HTTP server; cleanups stop everything it started.
func newTestHub(t *testing.T, ns string, tweaks ...hubTweak) *testHub {
	t.Helper()
	return newTestHubOn(t, redistest.URL(t), ns, tweaks...)
}

// newTestHubOn is newTestHub on the Redis at url.
func newTestHubOn(t *testing.T, url, ns string, tweaks ...hubTweak) *testHub {
	t.Helper()
	if ns == "" {
		ns = redistest.Namespace(t)
	}
	rs, err := store.Open(context.Background(), store.Options{URL: url, Namespace: ns}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st := agentdb.New(rs)
	e := echo.New()
	srv := httptest.NewUnstartedServer(e)
	conns := &trackedListener{Listener: srv.Listener}
	srv.Listener = conns
	srv.Start()
	engine := newTestEngine(t, webrtc.EngineOptions{})
	fc := &fakeCarriers{}
	opts := HubOptions{Store: st, Engine: engine, Carriers: fc, Instance: "inst-" + srv.Listener.Addr().String(),
		PublicURL: srv.URL, RelaySecret: []byte("relay secret"), RingTimeout: 2 * time.Second,
		QueueTimeout: 10 * time.Second, WrapUp: 300 * time.Millisecond, PresenceTTL: 2 * time.Second,
		Heartbeat: 200 * time.Millisecond, Staff: testStaff}
	for _, f := range tweaks {
		f(&opts)
	}
	hub := NewHub(opts)
	e.GET("/agent", HandlePage()) // as cmd/switchboard/routes.go mounts them
	e.GET("/agent/ws", hub.HandleSignalling())
	e.GET("/internal/media/:call", hub.HandleRelay())
	e.GET("/agent/monitor", hub.HandleMonitor())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("hub: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		srv.Close()
		st.Close()
	})
	// kill plays a SIGKILL as far as the others can tell: every connection to the instance
	// (softphones, relays) drops without a goodbye, and its heartbeat stops.
	kill := func() {
		conns.cut()
		stop()
	}
	return &testHub{Hub: hub, st: st, carriers: fc, url: srv.URL, kill: kill, stop: stop}
}

// trackedListener remembers every connection it accepts, so a test can cut them all at once
// (hijacked WebSockets included, which the HTTP server forgets).
type trackedListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackedListener) cut() {
	_ = l.Listener.Close() // nobody answers any more; the server's own Close finds it closed
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as the kernel sends for a killed process
		}
		_ = c.Close()
	}
	l.conns = nil
}

// agent creates an agent and signs it in with a SimAgent speaking hz; it is idle since now.
func (h *testHub) agent(t *testing.T, id string, hz float64) *agentsim.SimSoftphone {
	t.Helper()
	token := agentdb.NewAgentToken(id)
	if _, _, err := h.st.PutAgent(context.Background(), id, "Agent "+id, token, true); err != nil {
		t.Fatal(err)
	}
	return h.signIn(t, token, hz)
}

func (h *testHub) signIn(t *testing.T, token string, hz float64) *agentsim.SimSoftphone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := agentsim.DialSoftphone(ctx, h.url, token, agentsim.SimAgentOptions{ToneHz: hz, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Agent.WaitConnected(ctx); err != nil {
		t.Fatalf("softphone audio: %v", err)
	}
	return p
}

func expect(t *testing.T, p *agentsim.SimSoftphone, what string, match func(agentsim.SoftphoneMessage) bool) agentsim.SoftphoneMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := p.Expect(ctx, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v; got %s", what, err, describe(p.Messages()))
	}
	return m
}

func describe(msgs []agentsim.SoftphoneMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		if m.Type == signal.TypeCandidate || m.Type == signal.TypePong {
			continue
		}
		b.WriteString(string(m.Raw))
		b.WriteString(" ")
	}
	return b.String()
}

func typed(typ, callID string) func(agentsim.SoftphoneMessage) bool {
	return func(m agentsim.SoftphoneMessage) bool { return m.Type == typ && (callID == "" || m.CallID == callID) }
}

func availability(state string) func(agentsim.SoftphoneMessage) bool {
	return func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeAvailability && m.State == state }
}

// inbound routes a new inbound call through the hub, as the voice webhook does.
func (h *testHub) inbound(t *testing.T, from string) string {
	t.Helper()
	id := store.NewCallID()
	if _, err := h.st.Apply(context.Background(), call.Event{ID: id + ":in", CallID: id, State: call.Ringing,
		Direction: call.Inbound, From: from, To: "+15550100", Carrier: "tw"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Accept(context.Background(), InboundCall{CallID: id, Carrier: "tw", CarrierCallID: "CA" + id, From: from, To: "+15550100"}); err != nil {
		t.Fatal(err)
	}
	return id
}

func power(b []byte, hz float64) float64 { return media.Goertzel(b[:len(b)/1600*1600], hz) }

// heard reports whether some 100 ms of b carries both tones of a DTMF digit.
func heard(b []byte, lo, hi float64) bool {
	for i := 0; i+800 <= len(b); i += 160 {
		w := b[i : i+800]
		if media.Goertzel(w, lo) > 0.02 && media.Goertzel(w, hi) > 0.02 {
			return true
		}
	}
	return false
}

// answeredBy rings ann (on the holder h) for a new inbound call playing callerHz, has her
// answer it, and waits until the caller hears her.
func answeredBy(t *testing.T, h *testHub, ann *agentsim.SimSoftphone, hz float64) (string, *testStream) {
	t.Helper()
	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	stream := startStream(t, h.Hub, id, callerHz)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	redistest.Eventually(t, 5*time.Second, "the caller hears the agent", func() bool {
		return power(stream.recent(3200), hz) > heardPower
	})
	return id, stream
}

// annOnABobOnB starts two instances, a and b, on one namespace, signs ann in on a and bob on
// b, and has ann answer a new inbound call held by a.
func annOnABobOnB(t *testing.T) (a, b *testHub, ann, bob *agentsim.SimSoftphone, id string, stream *testStream) {
	t.Helper()
	ns := redistest.Namespace(t)
	a = newTestHub(t, ns)
	b = newTestHub(t, ns)
	ann = a.agent(t, "ann", annHz)
	bob = b.agent(t, "bob", bobHz)
	id, stream = answeredBy(t, a, ann, annHz)
	return a, b, ann, bob, id, stream
}
