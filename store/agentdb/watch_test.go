package agentdb

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
)

// TestWatchPresenceHearsStateChanges: signing in, changing state and signing out are each
// announced with the agent's id.
func TestWatchPresenceHearsStateChanges(t *testing.T) {
	r := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var mu sync.Mutex
	var heard []string
	subscribed := make(chan struct{}, 1)
	wg.Go(func() {
		r.WatchPresence(ctx, func(agent string) {
			mu.Lock()
			heard = append(heard, agent)
			mu.Unlock()
		}, func() {
			select {
			case subscribed <- struct{}{}:
			default:
			}
		})
	})
	<-subscribed
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(heard) }

	p := login(t, r, "ann", "inst", Available, time.Now())
	redistest.Eventually(t, 5*time.Second, "sign-in announced", func() bool { return count() == 1 })
	next := p
	next.State, next.Since = Away, time.Now()
	if err := r.SetState(ctx, p.Session, Available, "", next, testTTL); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "away announced", func() bool { return count() == 2 })
	if err := r.Disconnect(ctx, "ann", p.Session); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "sign-out announced", func() bool { return count() == 3 })
	mu.Lock()
	defer mu.Unlock()
	for _, a := range heard {
		if a != "ann" {
			t.Fatalf("heard %v", heard)
		}
	}
}
