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
