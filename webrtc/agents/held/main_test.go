package held

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// Every call's goroutines (hold tone, room clock, timers) must be gone when the tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// testHost is a held call's host with no hub: it owns the calls' goroutines as the hub does
// (its lock taken under a call's, never the other way) and keeps the notices sent.
type testHost struct {
	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	notices []Notice
}

func (h *testHost) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *testHost) Go(f func()) bool {
	if !h.enter() {
		return false
	}
	go func() {
		defer h.wg.Done()
		f()
	}()
	return true
}

func (h *testHost) After(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() { h.Go(f) })
}

func (h *testHost) Background(timeout time.Duration, f func(ctx context.Context)) {
	h.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		f(ctx)
	})
}

func (h *testHost) Send(_ string, n Notice) {
	h.mu.Lock()
	h.notices = append(h.notices, n)
	h.mu.Unlock()
}

func (h *testHost) Poke()           {}
func (h *testHost) Forget(*Call)    {}
func (h *testHost) TrackLeg(*Leg)   {}
func (h *testHost) UntrackLeg(*Leg) {}

// shut stops taking goroutines and waits for those running.
func (h *testHost) shut() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.wg.Wait()
}

// nullStream is a carrier stream that takes every frame and goes nowhere.
type nullStream struct{}

func (nullStream) SendAudio([]byte) error { return nil }
func (nullStream) Close() error           { return nil }

// nullSink is an agent side that takes every frame and goes nowhere.
type nullSink struct{ id int }

func (*nullSink) Audio([]byte) {}
func (*nullSink) DTMF(string)  {}
func (*nullSink) Ended(string) {}
func (*nullSink) Moved()       {}

// answeredCall is an inbound call answered by agent ann, on ann, with its carrier stream,
// held by a host of its own that the test's end shuts down.
func answeredCall(t *testing.T, ann Sink) *Call {
	t.Helper()
	host := &testHost{}
	c := New(host, &Options{QueueTimeout: time.Hour, PresenceTTL: time.Hour},
		agentdb.Offer{Call: "c1", Direction: call.Inbound, State: agentdb.OfferAnswered, Agent: "ann"})
	c.Start(agentdb.Offer{Call: "c1", State: agentdb.OfferAnswered, Agent: "ann"})
	t.Cleanup(func() {
		c.Shutdown()
		host.shut()
	})
	if err := c.Join(t.Context(), "ann", ann); err != nil { // before the stream: nobody to summon
		t.Fatal(err)
	}
	if _, err := c.StreamStarted(nullStream{}); err != nil {
		t.Fatal(err)
	}
	return c
}
