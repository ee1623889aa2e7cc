package dispatch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/redistest"
)

// silentRun places calls at rate on a primary that accepts them and never calls back, until
// its breaker opens, and returns how long after the first silent call that took. While
// heardElsewhere, another instance keeps hearing from the primary (it delivers callbacks
// there). The threshold of five failures would take the deadline plus 4 s at one call per
// second; carrier-level liveness should need only the deadline.
//
// With warm, the primary first calls back (and is heard) for that long; it goes silent just
// after a call was placed, the worst moment, and the time is counted from then.
func silentRun(t *testing.T, rate int, heardElsewhere bool, warm, within time.Duration) (time.Duration, bool) {
	ns := redistest.Namespace(t)
	in, other := newInstance(t, ns), newInstance(t, ns)
	primary, secondary := newScripted(t, in.st, "primary"), newScripted(t, in.st, "secondary")
	fiveFailures := func(c *carrier.Config) { c.Breaker.FailureThreshold = 5 }
	in.put(t, primary.config(0, fiveFailures), secondary.config(1, nil))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	every := time.Second / time.Duration(rate)
	for warmStart := time.Now(); time.Since(warmStart) < warm; time.Sleep(every) {
		if _, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil {
			t.Fatal(err)
		}
		in.breakers.Heard("primary") // its callback, as the webhooks report it
	}
	primary.callback.Store(false)
	if heardElsewhere {
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for ctx.Err() == nil {
				other.breakers.Heard("primary")
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
		}()
	}
	start := time.Now()
	next := start
	if warm > 0 {
		next = start.Add(every) // a call was placed just before the silence began
	}
	for time.Since(start) < within {
		if in.breakers.State("primary") == BreakerOpen {
			return time.Since(start), true
		}
		if !time.Now().Before(next) {
			if _, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil {
				t.Fatal(err)
			}
			next = next.Add(every)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), false
}

// TestSilentCarrierOpensWithinTheDeadline: at 1, 2 and 10 calls/s a carrier that accepts
// calls and calls back for none of them is opened within its callback deadline (1 s) plus
// 1 s of the first silent call, fleet-wide, not after five timed-out calls.
func TestSilentCarrierOpensWithinTheDeadline(t *testing.T) {
	const deadline = time.Second
	for _, rate := range []int{1, 2, 10} {
		t.Run(fmt.Sprintf("%d calls/s", rate), func(t *testing.T) {
			took, opened := silentRun(t, rate, false, 0, deadline+time.Second)
			if !opened {
				t.Fatalf("breaker still closed %v after the first silent call", took)
			}
			t.Logf("silent carrier detected %v after the first silent call (deadline %v)", took.Round(time.Millisecond), deadline)
			// From the moment a carrier that was calling back goes silent, the first call that
			// can prove it may come one call interval later.
			took, opened = silentRun(t, rate, false, 2*time.Second, deadline+time.Second+time.Second/time.Duration(rate))
			if !opened {
				t.Fatalf("breaker still closed %v after the carrier went silent", took)
			}
			t.Logf("silent carrier detected %v after it went silent, worst phase (deadline %v)", took.Round(time.Millisecond), deadline)
		})
	}
}

// TestCarrierHeardElsewhereIsNotSilent: calls without callbacks on this instance do not open
// the breaker as silent while another instance hears from the carrier; only the per-call
// threshold (five failures) does, later.
func TestCarrierHeardElsewhereIsNotSilent(t *testing.T) {
	took, opened := silentRun(t, 1, true, 0, 2500*time.Millisecond)
	if opened {
		t.Fatalf("breaker opened %v after the first call although another instance heard the carrier", took)
	}
}
