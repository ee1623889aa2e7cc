package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

func TestWatchCalls(t *testing.T) {
	r := open(t)
	ctx, stop := context.WithCancel(context.Background())
	got := make(chan string, 8)
	subscribed := make(chan struct{}, 1)
	var watching sync.WaitGroup
	watching.Go(func() {
		r.WatchCalls(ctx, func(id, state string) { got <- id + " " + state }, func() { subscribed <- struct{}{} })
	})
	defer func() { stop(); watching.Wait() }()
	<-subscribed
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "q", CallID: id, State: call.Queued})
	mustClaim(t, r, id, "c", 1)
	mustApply(t, r, call.Event{ID: AttemptEventID(id, 1), CallID: id, Carrier: "c", Detail: "accepted by c"})
	mustApply(t, r, call.Event{ID: "r", CallID: id, State: call.Ringing})
	for _, want := range []string{id + " queued", id + " ringing"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
}

// TestBatchWakesOncePerCallChange: a batch of events wakes watchers with one message, and
// every watcher still hears of each call that changed, in order, and of no event that
// changed nothing.
func TestBatchWakesOncePerCallChange(t *testing.T) {
	r := open(t)
	ctx, stop := context.WithCancel(context.Background())
	got := make(chan string, 16)
	notices := make(chan Notice, 16)
	subscribed := make(chan struct{}, 2)
	var watching sync.WaitGroup
	watching.Go(func() {
		r.WatchCalls(ctx, func(id, state string) { got <- id + " " + state }, func() { subscribed <- struct{}{} })
	})
	watching.Go(func() {
		r.Listen(ctx, "me", func(n Notice) {
			switch n.Kind {
			case NoticeSubscribed:
				subscribed <- struct{}{}
			case NoticeCall:
				notices <- n
			}
		})
	})
	defer func() { stop(); watching.Wait() }()
	<-subscribed
	<-subscribed
	a, b := NewCallID(), NewCallID()
	sendBatch(r, []call.Event{
		{ID: "r", CallID: a, State: call.Ringing},
		{ID: "r", CallID: b, State: call.Ringing},
		{ID: "r", CallID: a, State: call.Ringing}, // a duplicate: no wake-up
		{ID: "i", CallID: a, State: call.InProgress},
	}, time.Now())
	want := []string{a + " ringing", b + " ringing", a + " in-progress"}
	for _, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("WatchCalls: got %q, want %q", g, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("WatchCalls: no %q", w)
		}
		select {
		case n := <-notices:
			if n.CallID+" "+n.State.String() != w || n.Payload != w {
				t.Fatalf("Listen: got %+v, want %q", n, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Listen: no %q", w)
		}
	}
	mustApply(t, r, call.Event{ID: "c", CallID: b, State: call.Completed})
	if g := <-got; g != b+" completed" {
		t.Fatalf("after the batch: got %q (a change too many?)", g)
	}
}
