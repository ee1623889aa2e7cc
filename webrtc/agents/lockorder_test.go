package agents

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/media"
)

// nullStream is a carrier stream that takes every frame and goes nowhere.
type nullStream struct{}

func (nullStream) SendAudio([]byte) error { return nil }
func (nullStream) Close() error           { return nil }

// A held call takes the hub's lock under its own (its hold tone registers with the hub), so
// the hub must never take a call's lock under its own: dispatch scanning the queue while
// callers' hold tones start and stop once deadlocked the whole hub.
func TestQueueScanAndHoldTonesNeverDeadlock(t *testing.T) {
	h := NewHub(HubOptions{Instance: "lockorder", QueueTimeout: time.Hour})
	var calls []*heldCall
	for _, id := range []string{"c1", "c2", "c3"} {
		c := newHeldCall(h, agentdb.Offer{Call: id, Direction: call.Inbound, State: agentdb.OfferQueued})
		c.phase = phaseWaiting
		h.calls[id] = c
		calls = append(calls, c)
	}
	if _, err := calls[0].streamStarted(nullStream{}); err != nil {
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
			c := calls[0]
			for range 2000 {
				c.mu.Lock()
				c.stopToneLocked()
				c.startToneLocked() // takes h.mu (enter) under c.mu
				c.mu.Unlock()
			}
		})
		wg.Wait()
	}()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("the queue scan and a hold tone deadlocked on the hub's and the call's locks")
	}
	for _, c := range calls {
		c.shutdown()
	}
	close(h.done)
	h.wg.Wait()
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
	c := newHeldCall(h, agentdb.Offer{Call: "c1", Direction: call.Inbound, State: agentdb.OfferAnswered, Agent: "ann"})
	c.phase, c.agent = phaseAnswered, "ann"
	h.calls["c1"] = c
	ann, bob := &nullSink{1}, &nullSink{2}
	if err := c.attach("ann", ann); err != nil { // before the stream: nobody to summon
		t.Fatal(err)
	}
	if _, err := c.streamStarted(nullStream{}); err != nil {
		t.Fatal(err)
	}
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
				if err := c.addLeg(bob, media.RoleTalk); err != nil {
					t.Error(err)
					return
				}
				_ = c.holdCaller(true)
				_ = c.holdCaller(false)
				c.removeLeg(bob)
			}
		})
		wg.Go(func() {
			for range 20000 {
				c.Audio(frame)
				_ = c.audioFrom(ann, frame)
				_ = c.audioFrom(bob, frame)
			}
		})
		wg.Wait()
	}()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("rooms, frames and the queue scan deadlocked")
	}
	if c.room.Load() != nil {
		t.Error("a room is left with two parties")
	}
	c.shutdown()
	close(h.done)
	h.wg.Wait()
}
