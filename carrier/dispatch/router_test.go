package dispatch

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/redistest"
)

func TestRouterOrdersByPriorityThenWeight(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	cfg := func(id string, priority, weight int, enabled bool) carrier.Config {
		return carrier.Config{ID: id, Kind: carrier.Twilio, APIURL: "http://127.0.0.1:1", AccountSID: "AC1", AuthToken: "token-0123456789",
			From: "+15550100", Priority: priority, Weight: weight, Enabled: enabled}
	}
	in.put(t, cfg("a", 0, 1, true), cfg("b", 0, 3, true), cfg("c", 5, 1, true), cfg("off", 0, 1, false), cfg("drained", 1, 1, true))
	if err := in.breakers.Force(context.Background(), "drained", ForceOpen, "admin@test"); err != nil {
		t.Fatal(err)
	}
	order := func(draws ...int) []string {
		i := 0
		r := NewRouter(in.reg, in.breakers, func(n int) int { d := draws[i] % n; i++; return d })
		var ids []string
		for _, c := range r.Route().Candidates {
			ids = append(ids, c.Carrier)
		}
		return ids
	}
	// Priority 0 holds a (weight 1) and b (weight 3): a draw below 1 picks a, others b.
	if got := order(0, 0, 0); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("draw 0: %v", got)
	}
	if got := order(1, 0, 0); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Fatalf("draw 1: %v", got)
	}
	r := in.router.Route()
	want := []Skip{{"off", "disabled"}, {"drained", "drained: breaker forced open by an admin"}}
	if !slices.Equal(r.Skipped, want) {
		t.Fatalf("skipped %+v", r.Skipped)
	}
	// Over many draws, b leads three times as often as a.
	first := map[string]int{}
	for range 4000 {
		first[in.router.Route().Candidates[0].Carrier]++
	}
	if ratio := float64(first["b"]) / float64(first["a"]); ratio < 2.5 || ratio > 3.6 {
		t.Fatalf("b/a first ratio %.2f (%v), want about 3", ratio, first)
	}
}

// With Redis gone, each instance keeps its local breaker: calls still fail over and the
// local breaker still opens.
func TestLocalBreakersWhenRedisIsDown(t *testing.T) {
	srv := redistest.NewServer(t)
	in := newInstanceOn(t, openStoreURL(t, srv.URL(), redistest.Namespace(t)))
	primary, secondary := newScripted(t, in.st, "primary"), newScripted(t, in.st, "secondary")
	secondary.callback.Store(false)
	in.put(t, primary.config(0, nil), secondary.config(1, nil))
	primary.status.Store(503)
	redistest.Eventually(t, 2*time.Second, "shared", func() bool { return in.breakers.sharedOK.Load() })
	srv.Stop()
	redistest.Eventually(t, 3*time.Second, "local only", func() bool { return !in.breakers.sharedOK.Load() })

	for range 3 {
		// The record cannot be created without Redis: placement refuses at once.
		if _, err := in.placer.Place(context.Background(), PlaceCall{To: nextNumber()}); err == nil {
			t.Fatal("a call was placed without a record")
		}
	}
	for range 3 {
		done, err := in.breakers.Allow(context.Background(), "primary")
		if err != nil {
			t.Fatal(err)
		}
		done(errTestFault)
	}
	if st := in.breakers.State("primary"); st != BreakerOpen {
		t.Fatalf("local breaker %v after 3 faults", st)
	}
	srv.Start()
	redistest.Eventually(t, 3*time.Second, "shared again", func() bool { return in.breakers.sharedOK.Load() })
	// go-redis probes a Redis it could not dial from a goroutine of its own that sleeps a
	// second between tries; it ends once a probe finds Redis again. The test waits for that,
	// or the goroutine outlives it (goleak fails the package when this test runs last).
	redistest.Eventually(t, 5*time.Second, "the client's redial probe to end", func() bool {
		buf := make([]byte, 1<<20)
		return !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("(*ConnPool).tryDial"))
	})
}

var errTestFault = errorString("http 503")

type errorString string

func (e errorString) Error() string { return string(e) }
