package agents

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/media"
)

// nullStream is a carrier stream that takes every frame and goes nowhere.
type nullStream struct{}

func (nullStream) SendAudio([]byte) error { return nil }
func (nullStream) Close() error           { return nil }

// A held call takes the hub's lock under its own (its hold tone registers with the hub), so
// the hub must never take a call's lock under its own: dispatch scanning the queue while
// callers' hold tones start and stop once deadlocked the whole hub. The tone here starts and
// stops with a caller put on hold and back in a call's room (held.Call.HoldCaller), the one
// way the held package's API toggles it under the call's lock at will.
func TestQueueScanAndHoldTonesNeverDeadlock(t *testing.T) {
	h := NewHub(HubOptions{Instance: "lockorder", QueueTimeout: time.Hour})
	var calls []*held.Call
	for _, id := range []string{"c1", "c2", "c3"} {
		c, err := h.adopt(agentdb.Offer{Call: id, Direction: call.Inbound, State: agentdb.OfferQueued})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	if _, err := calls[0].StreamStarted(nullStream{}); err != nil { // its hold tone plays
		t.Fatal(err)
	}
	toned := answeredCall(t, h, "c4", &nullSink{1})
	if err := toned.AddLeg(&nullSink{2}, media.RoleTalk); err != nil {
		t.Fatal(err)
	}

	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 20000 {
				if n := len(h.waiting()); n != len(calls) {
					t.Errorf("%d calls waiting, want %d", n, len(calls))
					return
				}
			}
		})
		wg.Go(func() {
			for range 2000 {
				_ = toned.HoldCaller(true)  // starts the tone: takes h.mu (enter) under the call's lock
				_ = toned.HoldCaller(false) // stops it
			}
		})
		wg.Wait()
	}()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("the queue scan and a hold tone deadlocked on the hub's and the call's locks")
	}
	for _, c := range append(calls, toned) {
		c.Shutdown()
	}
	close(h.done)
	h.wg.Wait()
}

// answeredCall is a call held by h, answered by agent ann on side ann, with its stream.
func answeredCall(t *testing.T, h *Hub, id string, ann mediaSink) *held.Call {
	t.Helper()
	c, err := h.adopt(agentdb.Offer{Call: id, Direction: call.Inbound, State: agentdb.OfferAnswered, Agent: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Join(t.Context(), "ann", ann); err != nil { // before the stream: nobody to summon
		t.Fatal(err)
	}
	if _, err := c.StreamStarted(nullStream{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// nullSink is an agent side that takes every frame and goes nowhere.
type nullSink struct{ id int }

func (*nullSink) Audio([]byte) {}
func (*nullSink) DTMF(string)  {}
func (*nullSink) Ended(string) {}
func (*nullSink) Moved()       {}

// A call's room starts and stops its clock, and its hold tone, under the call's lock (both
// register with the hub); frames go into it from other goroutines meanwhile. None of it may
// deadlock against the hub scanning its calls.
func TestRoomsAndQueueScanNeverDeadlock(t *testing.T) {
	h := NewHub(HubOptions{Instance: "lockorder", QueueTimeout: time.Hour})
	ann, bob := &nullSink{1}, &nullSink{2}
	c := answeredCall(t, h, "c1", ann)
	frame := make([]byte, 160)

	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 5000 {
				h.waiting()
			}
		})
		wg.Go(func() {
			for range 300 {
				if err := c.AddLeg(bob, media.RoleTalk); err != nil {
					t.Error(err)
					return
				}
				_ = c.HoldCaller(true)
				_ = c.HoldCaller(false)
				c.RemoveLeg(bob)
			}
		})
		wg.Go(func() {
			for range 20000 {
				c.Audio(frame)
				_ = c.AudioFrom(ann, frame)
				_ = c.AudioFrom(bob, frame)
			}
		})
		wg.Wait()
	}()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("rooms, frames and the queue scan deadlocked")
	}
	if c.IsRoom() {
		t.Error("a room is left with two parties")
	}
	c.Shutdown()
	close(h.done)
	h.wg.Wait()
}
