package store

import (
	"context"
	"testing"
	"time"
)

// Every watcher shares one connection: a message is sent by Redis once, however many parts of
// the instance watch its channel.
func TestWatchersShareOneConnection(t *testing.T) {
	r := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type got struct{ who, id, state string }
	msgs := make(chan got, 16)
	subscribed := make(chan string, 16)
	for _, who := range []string{"a", "b"} {
		go r.WatchCalls(ctx, func(id, state string) { msgs <- got{who, id, state} }, func() { subscribed <- who })
	}
	for range 2 {
		waitFor(t, subscribed)
	}
	n, err := r.rdb.PubSubNumSub(ctx, r.keys.channel()).Result()
	if err != nil || n[r.keys.channel()] != 1 {
		t.Fatalf("subscribers of the calls channel: %v, %v; want one connection", n, err)
	}
	if err := r.rdb.Publish(ctx, r.keys.channel(), "CL1 ringing").Err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 2 {
		m := waitFor(t, msgs)
		if m.id != "CL1" || m.state != "ringing" {
			t.Fatalf("watcher %s got %+v", m.who, m)
		}
		seen[m.who] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("deliveries: %v, want both watchers", seen)
	}
}

// A watcher that falls behind loses messages, as Pub/Sub may, but is told to re-read once it
// has caught up, with no further message needed; the others are not held up by it.
func TestSlowWatcherIsToldToResync(t *testing.T) {
	r := open(t)
	r.bus.queueLen = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	slowResyncs := make(chan struct{}, 16)
	fast := make(chan string, 64)
	subscribed := make(chan struct{}, 4)
	go r.WatchCalls(ctx, func(string, string) { <-release }, func() { slowResyncs <- struct{}{}; subscribed <- struct{}{} })
	go r.WatchCalls(ctx, func(id, _ string) { fast <- id }, func() { subscribed <- struct{}{} })
	waitFor(t, subscribed)
	waitFor(t, subscribed)
	waitFor(t, slowResyncs)
	// One message at a time, each awaited by the fast watcher: its queue never holds more
	// than one (a burst could overflow it too on a loaded machine), while the slow watcher,
	// stuck on the first, overflows its queue of two.
	for _, id := range []string{"CL1", "CL2", "CL3", "CL4", "CL5", "CL6"} {
		if err := r.rdb.Publish(ctx, r.keys.channel(), id+" ringing").Err(); err != nil {
			t.Fatal(err)
		}
		if got := waitFor(t, fast); got != id {
			t.Fatalf("fast watcher got %s, want %s", got, id)
		}
	}
	select {
	case <-slowResyncs:
		t.Fatal("resync before the watcher caught up")
	default:
	}
	close(release)
	waitFor(t, slowResyncs)
}

// When the connection drops, go-redis makes it again, and every watcher hears that it must
// re-read what it may have missed.
func TestWatchersResyncAfterReconnect(t *testing.T) {
	r := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subscribed := make(chan struct{}, 16)
	msgs := make(chan string, 16)
	go r.WatchCalls(ctx, func(id, _ string) { msgs <- id }, func() { subscribed <- struct{}{} })
	waitFor(t, subscribed)
	if err := r.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, subscribed)
	if err := r.rdb.Publish(ctx, r.keys.channel(), "CL9 completed").Err(); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, msgs); got != "CL9" {
		t.Fatalf("after reconnect got %s", got)
	}
}

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}
