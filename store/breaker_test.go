package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"

	"github.com/switchboard/switchboard/store/redistest"
)

var testPolicy = BreakerPolicy{FailureThreshold: 3, FailureRatio: 0.5, MinRequests: 10,
	Window: 10 * time.Second, BucketPeriod: time.Second, OpenTimeout: 300 * time.Millisecond}

func TestSharedBreakerTripsProbesAndCloses(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	changes := make(chan string, 16)
	wctx, stop := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Go(func() { r.WatchBreakers(wctx, func(c string) { changes <- c }) })
	defer func() { stop(); watching.Wait() }()
	if got := <-changes; got != "" {
		t.Fatalf("first notification %q, want the subscription's", got)
	}

	// A success resets the consecutive count; three failures in a row trip it.
	for i, failed := range []bool{true, true, false, true, true, true} {
		opened, err := r.RecordBreakerOutcome(ctx, "tw", failed, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 5; opened != want {
			t.Fatalf("outcome %d: opened %v, want %v", i, opened, want)
		}
	}
	if got := <-changes; got != "tw" {
		t.Fatalf("notification %q", got)
	}
	st, err := r.BreakerStates(ctx, []string{"tw", "other"})
	if err != nil {
		t.Fatal(err)
	}
	if s := st["tw"]; s.OpenFor <= 0 || s.OpenFor > testPolicy.OpenTimeout || !s.HalfOpen {
		t.Fatalf("after tripping: %+v", s)
	}
	if s := st["other"]; s != (BreakerShared{}) {
		t.Fatalf("untouched carrier: %+v", s)
	}
	// Open: more failures change nothing; a local trip does not reopen it either.
	if opened, _ := r.RecordBreakerOutcome(ctx, "tw", true, testPolicy); opened {
		t.Fatal("an open breaker opened again")
	}
	if opened, _ := r.OpenBreaker(ctx, "tw", time.Second, false); opened {
		t.Fatal("a local trip reopened an open breaker")
	}
	redistest.Eventually(t, testPolicy.OpenTimeout+5*time.Second, "half-open after the open timeout", func() bool {
		st, _ = r.BreakerStates(ctx, []string{"tw"})
		s := st["tw"]
		return s.OpenFor == 0 && s.HalfOpen
	})
	// One prober.
	if ok, _ := r.ClaimProbe(ctx, "tw", "a", time.Second); !ok {
		t.Fatal("first claim refused")
	}
	if ok, _ := r.ClaimProbe(ctx, "tw", "b", time.Second); ok {
		t.Fatal("second prober admitted")
	}
	r.ReleaseProbe(ctx, "tw", "b") // not b's: no effect
	if st, _ := r.BreakerStates(ctx, []string{"tw"}); st["tw"].Prober != "a" {
		t.Fatalf("prober: %+v", st["tw"])
	}
	// A failed probe reopens it; a successful one closes it.
	if opened, _ := r.OpenBreaker(ctx, "tw", time.Second, true); !opened {
		t.Fatal("failed probe did not reopen")
	}
	if err := r.CloseBreaker(ctx, "tw"); err != nil {
		t.Fatal(err)
	}
	// An instance that has not heard of the close finds nothing to probe, not a free claim.
	if ok, err := r.ClaimProbe(ctx, "tw", "b", time.Second); ok || !errors.Is(err, ErrNotHalfOpen) {
		t.Fatalf("claim after close: %v %v, want ErrNotHalfOpen", ok, err)
	}
	if st, _ := r.BreakerStates(ctx, []string{"tw"}); st["tw"] != (BreakerShared{}) {
		t.Fatalf("after closing: %+v", st["tw"])
	}
}

func TestSharedBreakerRatioAndForce(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	p := testPolicy
	p.FailureThreshold = 100
	// 5 of 10 failed, never 3 in a row: the ratio trips it at the tenth.
	opened := false
	for i := range 10 {
		var err error
		if opened, err = r.RecordBreakerOutcome(ctx, "tx", i%2 == 1, p); err != nil {
			t.Fatal(err)
		}
		if opened && i != 9 {
			t.Fatalf("opened at %d", i)
		}
	}
	if !opened {
		t.Fatal("ratio did not trip")
	}
	w, err := r.BreakerWindowOf(ctx, "tx", p)
	if err != nil || w != (BreakerWindow{}) {
		t.Fatalf("window after tripping: %+v %v (it starts over)", w, err)
	}
	r.CloseBreaker(ctx, "tx")
	if err := r.ForceBreaker(ctx, "tx", "closed", Audit{Actor: "admin@test", Action: "breaker.force", Target: "tx", Detail: "closed"}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if opened, _ := r.RecordBreakerOutcome(ctx, "tx", true, p); opened {
			t.Fatal("a breaker forced closed opened")
		}
	}
	if w, _ := r.BreakerWindowOf(ctx, "tx", p); w.Requests != 5 || w.Failures != 5 || w.ConsecutiveFailures != 5 {
		t.Fatalf("window: %+v", w)
	}
	st, _ := r.BreakerStates(ctx, []string{"tx"})
	if st["tx"].Force != "closed" {
		t.Fatalf("force: %+v", st["tx"])
	}
	r.ForceBreaker(ctx, "tx", "", Audit{Actor: "admin@test", Action: "breaker.force", Target: "tx", Detail: "auto"})
	if st, _ := r.BreakerStates(ctx, []string{"tx"}); st["tx"].Force != "" {
		t.Fatalf("force after auto: %+v", st["tx"])
	}
	log, _ := r.AuditLog(ctx, 10)
	if len(log) != 2 || log[0].Detail != "auto" || log[1].Detail != "closed" {
		t.Fatalf("audit: %+v", log)
	}
}

func TestCDRCarriesAttempts(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: id + ":queued", CallID: id, State: call.Queued, Direction: call.Outbound, To: "+15550199"})
	mustClaim(t, r, id, "primary", 1)
	mustClaim(t, r, id, "secondary", 2)
	for _, e := range []call.Event{
		{ID: AttemptEventID(id, 1), CallID: id, Carrier: "primary", Detail: "primary: http 503 → next"},
		{ID: AttemptEventID(id, 2), CallID: id, Carrier: "secondary", Detail: "accepted by secondary"},
		{ID: "x", CallID: id, State: call.Completed, Carrier: "secondary"},
	} {
		mustApply(t, r, e)
	}
	cdrs, err := r.RecentCDRs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Attempt{{"primary", "primary: http 503 → next"}, {"secondary", "accepted by secondary"}}
	if len(cdrs) != 1 || len(cdrs[0].Attempts) != 2 || cdrs[0].Attempts[0] != want[0] || cdrs[0].Attempts[1] != want[1] {
		t.Fatalf("cdr: %+v", cdrs)
	}
	ev := []CarrierEvent{{Kind: "failover", Carrier: "primary", Next: "secondary", CallID: id, Detail: "http 503"}}
	if err := r.AddCarrierEvent(ctx, ev[0]); err != nil {
		t.Fatal(err)
	}
	got, err := r.CarrierEvents(ctx, 5)
	if err != nil || len(got) != 1 || got[0].Next != "secondary" || got[0].At.IsZero() {
		t.Fatalf("carrier events: %+v %v", got, err)
	}
}

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
