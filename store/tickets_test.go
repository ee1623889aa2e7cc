package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
)

// TestTicketsAreSingleUseAndExpire: a ticket is redeemed once, even by racing requests; an
// expired or made-up one is not found; Redis holds only its hash.
func TestTicketsAreSingleUseAndExpire(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	ticket := NewTicket()
	if err := r.IssueTicket(ctx, ticket, "admin", time.Minute); err != nil {
		t.Fatal(err)
	}
	if keys, _ := r.rdb.Keys(ctx, "*"+ticket+"*").Result(); len(keys) != 0 {
		t.Fatalf("the ticket itself is in a key: %v", keys)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	for range 8 {
		wg.Go(func() {
			if who, err := r.RedeemTicket(ctx, ticket); err == nil {
				mu.Lock()
				won = append(won, who)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || won[0] != "admin" {
		t.Fatalf("redeemed by %v, want once as admin", won)
	}
	if _, err := r.RedeemTicket(ctx, NewTicket()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a made-up ticket: %v", err)
	}
	if _, err := r.RedeemTicket(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a malformed ticket: %v", err)
	}
	short := NewTicket()
	if err := r.IssueTicket(ctx, short, "admin", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Watched without redeeming it, which would spend it.
	redistest.Eventually(t, 5*time.Second, "the ticket to expire", func() bool {
		return r.rdb.Exists(ctx, r.keys.ticket(ticketHash(short))).Val() == 0
	})
	if _, err := r.RedeemTicket(ctx, short); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired ticket: %v", err)
	}
}
