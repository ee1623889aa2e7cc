package carrierdb

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
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
	if err := r.ForceBreaker(ctx, "tx", "closed", store.Audit{Actor: "admin@test", Action: "breaker.force", Target: "tx", Detail: "closed"}); err != nil {
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
	r.ForceBreaker(ctx, "tx", "", store.Audit{Actor: "admin@test", Action: "breaker.force", Target: "tx", Detail: "auto"})
	if st, _ := r.BreakerStates(ctx, []string{"tx"}); st["tx"].Force != "" {
		t.Fatalf("force after auto: %+v", st["tx"])
	}
	log, _ := r.AuditLog(ctx, 10)
	if len(log) != 2 || log[0].Detail != "auto" || log[1].Detail != "closed" {
		t.Fatalf("audit: %+v", log)
	}
}
