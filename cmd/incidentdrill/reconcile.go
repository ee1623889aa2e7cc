package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
)

// killedFor is how long an instance killed with SIGKILL stays down before it is started again.
const killedFor = time.Second

// killedSpan is when calls could be caught by the SIGKILL: from a second before it (requests
// in flight on the instance) until a second after the instance was ready again; empty when no
// instance was killed.
func (d *drill) killedSpan() span {
	if d.killed.from.IsZero() {
		return span{}
	}
	return span{d.killed.from.Add(-time.Second), d.killed.to.Add(time.Second)}
}

// disagreeing lists the calls that ended at their carrier whose record says otherwise (or
// that have no record), by our call id ("" when no call of ours names the carrier's call).
func (ev *evidence) disagreeing() map[string][2]string {
	out := map[string][2]string{}
	for carrier, reps := range ev.reports {
		for sid, rep := range reps {
			if !terminal[rep.Status] {
				continue
			}
			id := ev.callOf[carrier][sid]
			if rec, ok := ev.records[id]; ok && sameEnd(rep.Status, rec.State) {
				continue
			}
			out[carrier+"/"+sid] = [2]string{carrier, sid}
		}
	}
	return out
}

// awaitAgreement reads again, every second, the records that disagree with their carrier,
// until none does or within passes, and returns how long it waited.
func awaitAgreement(ctx context.Context, s *stack.Stack, ev *evidence, within time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < within {
		var waiting []string
		for _, cs := range ev.disagreeing() {
			if id := ev.callOf[cs[0]][cs[1]]; id != "" {
				waiting = append(waiting, id)
			}
		}
		if len(waiting) == 0 {
			break
		}
		for _, id := range waiting {
			if c, found, err := readCall(ctx, s, id); err == nil && found {
				ev.records[id] = c
				delete(ev.unreadable, id)
			}
		}
		if !sleep(ctx, time.Second) {
			break
		}
	}
	return time.Since(start)
}

// reconcileResult is what the run says about learning every call's end.
type reconcileResult struct {
	// lag: from the carrier's end of a call to the store's record of it, by the source of
	// the entry that ended the call (callback, reconciled, ...).
	lag map[string][]time.Duration
	// lookups: REST status look-ups per carrier call.
	lookups, lookupsMax, calls int
	// reconciledLookups: look-ups of the calls whose end was reconciled.
	reconciledLookups, reconciled int
}

func reconcileStats(ev *evidence) reconcileResult {
	rr := reconcileResult{lag: map[string][]time.Duration{}}
	for carrier, reps := range ev.reports {
		for sid, rep := range reps {
			rr.calls++
			rr.lookups += rep.StatusLookups
			rr.lookupsMax = max(rr.lookupsMax, rep.StatusLookups)
			if !terminal[rep.Status] || rep.EndedAt.IsZero() {
				continue
			}
			rec, ok := ev.records[ev.callOf[carrier][sid]]
			if !ok {
				continue
			}
			for _, h := range rec.History {
				if !h.Changed || !terminal[h.State] {
					continue
				}
				src := h.Source
				if src == "" {
					src = "unknown"
				}
				rr.lag[src] = append(rr.lag[src], h.ReceivedAt.Sub(rep.EndedAt))
				if src == "reconciled" {
					rr.reconciled++
					rr.reconciledLookups += rep.StatusLookups
				}
				break
			}
		}
	}
	return rr
}

// print writes the reconciliation section of the report.
func (rr reconcileResult) print(p func(string, ...any), ev *evidence, r *result, o options) {
	p("")
	p("every call's end (SWITCHBOARD_RECONCILE_AFTER %v)", o.reconcileAfter)
	var srcs []string
	for src := range rr.lag {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		ds := rr.lag[src]
		p("  learnt from %-11s %5d calls: carrier's end -> our record p50 %v, p99 %v, max %v", src, len(ds),
			round(pct(ds, .5)), round(pct(ds, .99)), round(pct(ds, 1)))
	}
	avg := func(n, d int) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	p("  REST status look-ups: %d for %d carrier calls (%.2f a call, at most %d for one); %.2f a call for the %d ended by reconciliation",
		rr.lookups, rr.calls, avg(rr.lookups, rr.calls), rr.lookupsMax, avg(rr.reconciledLookups, rr.reconciled), rr.reconciled)
	p("  the store agreed with the carriers %v after the calls settled; still disagreeing, by cause: %s",
		round(ev.agreedAfter), orNone(r.unfinishedCauses()))
	n := 0
	for _, cs := range ev.disagreeing() {
		if n++; n > 5 {
			break
		}
		rep := ev.reports[cs[0]][cs[1]]
		id := ev.callOf[cs[0]][cs[1]]
		rec, ok := ev.records[id]
		if !ok {
			p("  e.g. %s %s (%s, ended %s): no record of ours (call %q)", cs[0], cs[1], rep.Direction, rep.Status, id)
			continue
		}
		var hist []string
		for _, h := range rec.History {
			hist = append(hist, fmt.Sprintf("%s/%s/%s", h.State, h.Source, clip(h.Detail, 30)))
		}
		p("  e.g. %s %s (%s, ended %s): call %s is %q, carrier call id %q, history %s", cs[0], cs[1], rep.Direction,
			rep.Status, id, rec.State, rec.CarrierCallID, strings.Join(hist, ", "))
	}
}

// noRecord is the cause of a carrier's call that Switchboard never stored, because it
// acknowledged none of its callbacks (all refused with 503 while Redis was stopped, or
// dropped): there is no record to be wrong, and no call id to look up. Finding such calls
// would take listing the carrier's calls, which Switchboard does not do.
const noRecord = "no record: not one of its callbacks was acknowledged"

// unfinishedCauses are the calls the carrier ended whose record disagrees at the end, by
// cause (what became of their callbacks).
func (r *result) unfinishedCauses() tally {
	t := tally{}
	for k, v := range r.unfinished {
		if !strings.HasPrefix(k, "still up") && k != noRecord {
			t[k] = v
		}
	}
	if len(r.disagree) > 0 {
		t["every callback acknowledged, yet the store disagrees"] = len(r.disagree)
	}
	return t
}

// reconcileGoal: every call's final state agrees with its carrier at the end of the run.
func (r *result) reconcileGoal() goalLine {
	n := r.unfinishedCauses().total()
	status := "PASS"
	if n > 0 {
		status = "FAIL"
	}
	return goalLine{status, "final states that disagree with the carrier = 0",
		fmt.Sprintf("%d%s; %d calls never stored", n, bracket(r.unfinishedCauses()), r.unfinished[noRecord])}
}

// lagGoal: endings learnt by reconciliation reach the store, p99, within
// SWITCHBOARD_RECONCILE_AFTER + 5 s of the carrier's end.
func (rr reconcileResult) lagGoal(o options) goalLine {
	ds := rr.lag["reconciled"]
	limit := o.reconcileAfter + 5*time.Second
	if len(ds) == 0 {
		return goalLine{"n/a", fmt.Sprintf("reconciled endings learnt p99 <= %v after the carrier's end", limit), "no ending was reconciled"}
	}
	status := "PASS"
	if pct(ds, .99) > limit {
		status = "FAIL"
	}
	return goalLine{status, fmt.Sprintf("reconciled endings learnt p99 <= %v after the carrier's end", limit),
		fmt.Sprintf("p99 %v of %d", round(pct(ds, .99)), len(ds))}
}
