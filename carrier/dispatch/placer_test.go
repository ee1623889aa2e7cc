package dispatch

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

func TestPlaceFailsOverOnFaultAndTheBreakerOpens(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary, secondary := newScripted(t, in.st, "primary"), newScripted(t, in.st, "secondary")
	in.put(t, primary.config(0, nil), secondary.config(1, nil))
	primary.status.Store(http.StatusServiceUnavailable)
	ctx := context.Background()

	for i := range 6 {
		c, err := in.placer.Place(ctx, PlaceCall{To: nextNumber(), Agent: "ann"})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if c.Carrier != "secondary" || c.CarrierCallID == "" || c.State != call.Queued && c.State != call.Initiated {
			t.Fatalf("call %d: %+v", i, c)
		}
		want := []string{"primary: http 503 → next", "accepted by secondary"}
		if i >= 3 {
			// Three faults in a row opened the primary's breaker: it is no longer tried.
			want = want[1:]
		}
		if got := attemptsOf(c); !slices.Equal(got, want) {
			t.Fatalf("call %d attempts: %q, want %q", i, got, want)
		}
	}
	if n := primary.placed.Load(); n != 3 {
		t.Fatalf("primary got %d requests, want 3 (then its breaker opened)", n)
	}
	if state, why := in.breakers.Admits("primary"); state != BreakerOpen || why == "" {
		t.Fatalf("primary breaker: %v %q", state, why)
	}
	r := in.router.Route()
	if len(r.Candidates) != 1 || r.Candidates[0].Carrier != "secondary" || len(r.Skipped) != 1 || r.Skipped[0].Carrier != "primary" {
		t.Fatalf("route: %+v", r)
	}
	ringOnce(t, primary, secondary)
}

func TestFinalAnswerIsNotRetriedElsewhere(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary, secondary := newScripted(t, in.st, "primary"), newScripted(t, in.st, "secondary")
	in.put(t, primary.config(0, nil), secondary.config(1, nil))
	primary.status.Store(http.StatusBadRequest)
	primary.body.Store(`{"code":21211,"message":"Invalid 'To' Phone Number","status":400}`)

	c, err := in.placer.Place(context.Background(), PlaceCall{To: nextNumber()})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err %v", err)
	}
	if c.State != call.Failed || secondary.placed.Load() != 0 {
		t.Fatalf("call %+v; secondary got %d requests", c, secondary.placed.Load())
	}
	if got := attemptsOf(c); len(got) != 1 || got[0] != "primary: twilio 21211 invalid number (final, no other carrier tried)" {
		t.Fatalf("attempts %q", got)
	}
	// A final answer says nothing against the carrier.
	if st := in.breakers.State("primary"); st != BreakerClosed {
		t.Fatalf("primary breaker %v", st)
	}
}

func TestEveryCarrierFailedLeavesAFailedRecord(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary, secondary := newScripted(t, in.st, "primary"), newScripted(t, in.st, "secondary")
	disabled := newScripted(t, in.st, "spare")
	in.put(t, primary.config(0, nil), secondary.config(1, nil), disabled.config(2, func(c *carrier.Config) { c.Enabled = false }))
	primary.status.Store(http.StatusBadGateway)
	secondary.hang.Store(true)

	start := time.Now()
	c, err := in.placer.Place(context.Background(), PlaceCall{To: nextNumber()})
	if !errors.Is(err, ErrNoCarrier) {
		t.Fatalf("err %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("placing took %v; the hang is bounded by the request timeout", took)
	}
	want := []string{"primary: http 502 → next", "secondary: timeout (no carrier left)"}
	if c.State != call.Failed || !slices.Equal(attemptsOf(c), want) {
		t.Fatalf("call %+v, attempts %q", c, attemptsOf(c))
	}
	last := c.History[len(c.History)-1]
	if last.State != call.Failed || last.Detail != "no carrier took the call: spare: disabled; primary: http 502; secondary: timeout" {
		t.Fatalf("last entry %+v", last)
	}
	cdrs, err := in.st.RecentCDRs(context.Background(), 1)
	if err != nil || len(cdrs) != 1 || cdrs[0].CallID != c.ID || len(cdrs[0].Attempts) != 2 || cdrs[0].Attempts[0].Carrier != "primary" {
		t.Fatalf("cdr %+v %v", cdrs, err)
	}
}

func TestMissingCallbacksOpenTheBreaker(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary, secondary := newScripted(t, in.st, "primary"), newScripted(t, in.st, "secondary")
	in.put(t, primary.config(0, nil), secondary.config(1, nil))
	primary.callback.Store(false)
	ctx := context.Background()

	// The primary accepts and never calls back. Calls keep going to it until the deadline
	// (1 s here) has passed for three of them.
	start := time.Now()
	for in.breakers.State("primary") == BreakerClosed {
		if time.Since(start) > 1*time.Second+2*time.Second {
			t.Fatalf("breaker still closed %v after the first silent call", time.Since(start))
		}
		if _, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()})
	if err != nil || c.Carrier != "secondary" {
		t.Fatalf("after opening: %+v %v", c, err)
	}
	redistest.Eventually(t, 2*time.Second, "the secondary's callback counted", func() bool {
		s, _ := in.breakers.Status(ctx, "secondary")
		return s.Local.Requests >= 1 && s.Local.ConsecutiveFailures == 0
	})
	ringOnce(t, primary, secondary)
}

func TestTwoInstancesShareTheBreakerAndProbeOnce(t *testing.T) {
	ns := redistest.Namespace(t)
	a, b := newInstance(t, ns), newInstance(t, ns)
	primary, secondary := newScripted(t, a.st, "primary"), newScripted(t, a.st, "secondary")
	a.put(t, primary.config(0, nil), secondary.config(1, nil))
	redistest.Eventually(t, 2*time.Second, "b sees the carriers", func() bool { return len(b.reg.All()) == 2 })
	ctx := context.Background()

	primary.status.Store(http.StatusServiceUnavailable)
	for range 3 {
		if _, err := a.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil {
			t.Fatal(err)
		}
	}
	if a.breakers.State("primary") != BreakerOpen {
		t.Fatal("a's breaker did not open")
	}
	took := redistest.Eventually(t, 500*time.Millisecond, "b stops using the primary", func() bool { return b.breakers.State("primary") == BreakerOpen })
	t.Logf("b saw the open breaker after %v", took)
	before := primary.placed.Load()
	if c, err := b.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil || c.Carrier != "secondary" || primary.placed.Load() != before {
		t.Fatalf("b placed on %q (%v)", c.Carrier, err)
	}

	// The primary recovers. After the open timeout both instances place calls at once; one
	// trial call reaches the primary, and once its callback arrives traffic returns.
	primary.status.Store(0)
	redistest.Eventually(t, 3*time.Second, "half-open", func() bool {
		return a.breakers.State("primary") == BreakerHalfOpen && b.breakers.State("primary") == BreakerHalfOpen
	})
	before = primary.placed.Load()
	var placed [2][]string
	for round := range 5 {
		for i, in := range []*instance{a, b} {
			c, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()})
			if err != nil {
				t.Fatal(err)
			}
			placed[i] = append(placed[i], c.Carrier)
		}
		// Only one instance may probe. A second call can reach the primary in the first round
		// only if the probe's callback already closed the breaker (a busy machine is slow
		// enough for that), which the events log then shows.
		if round == 0 && primary.placed.Load()-before > 1 && !probeClosed(t, a.st) {
			t.Fatalf("first round: %d trial calls on the primary, want 1 (a: %v, b: %v)", primary.placed.Load()-before, placed[0], placed[1])
		}
	}
	if !probeClosed(t, a.st) {
		t.Fatal("the events log shows no close after the probe")
	}
	if n := probes(t, a.st); n != 1 {
		t.Fatalf("%d half-open probes across the two instances, want 1", n)
	}
	redistest.Eventually(t, 3*time.Second, "closed everywhere", func() bool {
		return a.breakers.State("primary") == BreakerClosed && b.breakers.State("primary") == BreakerClosed
	})
	for _, in := range []*instance{a, b} {
		if c, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil || c.Carrier != "primary" {
			t.Fatalf("after recovery: %q %v", c.Carrier, err)
		}
	}
	ringOnce(t, primary, secondary)
}

// probes counts the half-open probes the events log records for the primary.
func probes(t *testing.T, st *carrierdb.Store) int {
	t.Helper()
	events, err := st.CarrierEvents(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Carrier == "primary" && e.Kind == "breaker-probe" {
			n++
		}
	}
	return n
}

// probeClosed reports whether the events log shows (within a few seconds: events are written
// in the background) the primary's breaker closed after a probe.
func probeClosed(t *testing.T, st *carrierdb.Store) bool {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		events, err := st.CarrierEvents(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Carrier == "primary" && e.Kind == "breaker-closed" {
				return true
			}
		}
	}
	return false
}

// TestTwilioCallsFallBackToAnotherInstance: a Twilio call's FallbackUrl is the voice URL on
// the instance FallbackBase names (the call id and attempt as in its Url), so the call's
// TwiML is fetched there if this instance is gone when the call is answered; with no other
// instance, there is none.
func TestTwilioCallsFallBackToAnotherInstance(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary := newScripted(t, in.st, "primary")
	in.put(t, primary.config(0, nil))
	other := ""
	in.placer.d.FallbackBase = func(context.Context) string { return other }
	ctx := context.Background()

	other = "https://sb2.example/"
	c, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()})
	if err != nil {
		t.Fatal(err)
	}
	other = ""
	if _, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()}); err != nil {
		t.Fatal(err)
	}
	primary.mu.Lock()
	forms := slices.Clone(primary.forms)
	primary.mu.Unlock()
	want := "https://sb2.example/webhooks/primary/voice?sb_call=" + c.ID + "&sb_attempt=1"
	if len(forms) != 2 || forms[0].Get("FallbackUrl") != want || forms[0].Get("Url") != "http://127.0.0.1:9/webhooks/primary/voice?sb_call="+c.ID+"&sb_attempt=1" {
		t.Fatalf("with another instance: %v, want FallbackUrl %s", forms, want)
	}
	if forms[1].Has("FallbackUrl") {
		t.Fatalf("alone: %v", forms[1])
	}
}
