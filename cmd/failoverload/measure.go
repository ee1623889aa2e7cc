package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
)

// result is what one outage run measured.
type result struct {
	mode           string
	calls, failed  int
	sentToPrimary  int           // calls that tried the primary after the outage began
	lastToPrimary  time.Duration // from the outage to the last call sent to the primary
	failedOver     []time.Duration
	baseline       []time.Duration // setup of calls placed straight on the secondary
	beforeOutage   []time.Duration // setup of calls on the healthy primary
	requestTimeout time.Duration
	failures       map[string]int
}

func measure(ctx context.Context, o options, mode string, stderr io.Writer) (result, error) {
	s, err := startStack(ctx, o, stderr)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	r := result{mode: mode, requestTimeout: o.requestTimeout, failures: map[string]int{}}

	var (
		mu      sync.Mutex
		answers []placed
		wg      sync.WaitGroup
	)
	outage := sim.Faults{Outage: true}
	if mode == "hang" {
		outage = sim.Faults{RESTHang: true, CallbackDropRate: 1}
	}
	interval := time.Second / time.Duration(o.rate)
	total := int(o.duration / interval)
	start := time.Now()
	var outageAt time.Time
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range total {
		if outageAt.IsZero() && time.Since(start) >= o.outageAt {
			if err := s.primary.SetFaults(outage); err != nil {
				return r, err
			}
			outageAt = time.Now()
		}
		wg.Go(func() {
			p := s.place(ctx, number(i))
			mu.Lock()
			answers = append(answers, p)
			mu.Unlock()
		})
		select {
		case <-ctx.Done():
			wg.Wait()
			return r, ctx.Err()
		case <-tick.C:
		}
	}
	wg.Wait()

	for _, p := range answers {
		r.calls++
		if p.err != nil || p.status != 201 {
			r.failed++
			key := fmt.Sprint(p.status)
			if p.err != nil {
				key = p.err.Error()
			}
			r.failures[key]++
			continue
		}
		triedPrimary := len(p.attempts) > 0 && strings.HasPrefix(p.attempts[0], "primary")
		switch {
		case p.sent.Before(outageAt):
			if p.carrier == "primary" {
				r.beforeOutage = append(r.beforeOutage, p.latency)
			}
		case triedPrimary:
			r.sentToPrimary++
			r.lastToPrimary = max(r.lastToPrimary, p.sent.Sub(outageAt))
			if p.carrier == "secondary" {
				r.failedOver = append(r.failedOver, p.latency)
			}
		case p.carrier == "secondary":
			r.baseline = append(r.baseline, p.latency)
		}
	}
	return r, nil
}

func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func (r result) print(w io.Writer) error {
	var b strings.Builder // the report is written at once, and its write error returned
	base := pct(r.baseline, 0.5)
	extra := func(q float64) time.Duration { return max(pct(r.failedOver, q)-base, 0) }
	goal := "< 50ms"
	if r.mode == "hang" {
		goal = "<= " + r.requestTimeout.String()
	}
	fmt.Fprintf(&b, "\nmode %s (primary %s)\n", r.mode, map[string]string{
		"error": "answers every request with 503 and sends no callbacks",
		"hang":  "never answers requests and sends no callbacks"}[r.mode])
	fmt.Fprintf(&b, "  calls placed                                 %d\n", r.calls)
	fmt.Fprintf(&b, "  calls failed                                 %d (goal 0)%s\n", r.failed, failureList(r.failures))
	fmt.Fprintf(&b, "  outage -> last call sent to the primary      %v (%d calls tried the primary after the outage began)\n",
		r.lastToPrimary.Round(time.Millisecond), r.sentToPrimary)
	fmt.Fprintf(&b, "  setup latency, healthy primary               p50 %v  p99 %v\n", round(pct(r.beforeOutage, .5)), round(pct(r.beforeOutage, .99)))
	fmt.Fprintf(&b, "  setup latency, straight to the secondary     p50 %v  p99 %v\n", round(base), round(pct(r.baseline, .99)))
	fmt.Fprintf(&b, "  setup latency, failed over (%d calls)        p50 %v  p99 %v\n", len(r.failedOver), round(pct(r.failedOver, .5)), round(pct(r.failedOver, .99)))
	fmt.Fprintf(&b, "  extra setup latency of a failed-over call    p50 %v  p99 %v (goal %s)\n", round(extra(.5)), round(extra(.99)), goal)
	_, err := io.WriteString(w, b.String())
	return err
}

func failureList(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(parts)
	return " [" + strings.Join(parts, ", ") + "]"
}

func round(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
