package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/ackhist"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/incident"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/machine"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
)

// goalLine is one goal's verdict.
type goalLine struct {
	status string // PASS, FAIL, n/a
	what   string
	got    string
}

func (r *result) stuckGoal() goalLine {
	if r.agents == nil {
		return goalLine{"n/a", "stuck agents = 0", "not measured: run with -agents above 0"}
	}
	status := "PASS"
	if len(r.stuck) > 0 {
		status = "FAIL"
	}
	return goalLine{status, "stuck agents = 0", fmt.Sprintf("%d of %d", len(r.stuck), len(r.agents.Agents))}
}

func (r *result) goals() []goalLine {
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	carriable, done := r.answering+r.inbound, r.completed+r.inCompleted
	caught := r.excluded.total() + r.inExcluded.total()
	share := 1.0
	if carriable > 0 {
		share = float64(done) / float64(carriable)
	}
	passed, kept := 0, 0
	for _, w := range r.windows {
		if w.goal > 0 {
			kept++
			if w.pass {
				passed++
			}
		}
	}
	return []goalLine{
		{verdict(share >= completionGoal && carriable > 0), "completed >= 99.9% of the calls a healthy carrier could carry",
			fmt.Sprintf("%.2f%% (%d of %d; %.2f%% counting the %d caught by the Redis stop or the SIGKILL)", 100*share, done, carriable,
				100*float64(done)/float64(max(1, carriable+caught)), caught)},
		{verdict(len(r.lost) == 0 && len(r.unverified) == 0), "acknowledged events lost = 0",
			fmt.Sprintf("%d of %d acknowledged (%d could not be checked)", len(r.lost), r.acked, len(r.unverified))},
		{verdict(r.redirects == 0), "3xx answers = 0", fmt.Sprint(r.redirects)},
		r.stuckGoal(),
		{verdict(passed == kept), "every outage window routed around in time",
			fmt.Sprintf("%d of %d (API failing: 1s; callbacks stopped: callback deadline %v + 2s)", passed, kept, stack.CallbackDeadline)},
		{verdict(len(r.disagree) == 0), "(drill) the store agrees with the carrier wherever every callback was acknowledged",
			fmt.Sprintf("%d disagreements", len(r.disagree))},
		r.reconcileGoal(),
		r.lag,
		r.handover.goal(),
	}
}

// print writes the report, and returns the first write error.
func (r *result) print(w io.Writer, d *drill, ev *evidence, command string) error {
	t, o := d.t, d.o
	var werr error // after one failed write the rest of the report is not written
	p := func(format string, args ...any) {
		if werr == nil {
			_, werr = fmt.Fprintf(w, format+"\n", args...)
		}
	}
	if t.Incident {
		p("incidentdrill, %s mode: 5 November 2018, %s-%s UTC (%.0f min, %.0f min degraded), replayed at 1 min = %v",
			t.Name, t.Clock(0), t.Clock(t.End), t.End, t.Degraded(), t.Scale)
	} else {
		p("incidentdrill, %s mode: one window of each kind of the incident, %.0f s of degraded primary in %.0f s, and the chaos, shorter",
			t.Name, t.At(t.Degraded()).Seconds(), t.At(t.End).Seconds())
	}
	p("command:  %s", command)
	p("machine:  %s", machine.Describe())
	p("stack:    redis-server (appendonly yes, appendfsync always); Switchboard sb1 and sb2, built from this checkout, each")
	p("          behind its own front door (its public URL, where carriers call back and stream media) and both behind a")
	p("          round-robin load balancer (calls API, softphones); simulated carriers: primary (twilio kind, priority 0;")
	p("          its inbound calls go to sb1), secondary (telnyx kind, priority 1; inbound to sb2)")
	p("breakers: failure_threshold %d, window %v, open_timeout %v, callback_deadline %v (the drill's; default 10s);",
		stack.FailureThreshold, stack.BreakerWindow, stack.OpenTimeout, stack.CallbackDeadline)
	p("          request_timeout %v", stack.RequestTimeout)
	p("load:     %d calls/s through POST /api/calls for %v (97%% to numbers that answer, 2%% busy, 1%% invalid);",
		o.rate, (o.warmup + t.At(t.End) + o.tail).Round(time.Second))
	p("          callees answer after %v (past the callback deadline, so only status callbacks can prove the primary", o.ring)
	p("          alive in time) and talk %v; %.1f inbound calls/s at random from both carriers for %d agents (wrap-up %v),",
		o.talk, o.inboundRate, o.agents, o.wrapUp)
	p("          their callers staying %v;", o.inboundTalk)
	p("          both carriers duplicate %.0f%% of callbacks throughout", 100*incident.BaselineDuplicates)
	var chaos []string
	if !d.restart.from.IsZero() {
		chaos = append(chaos, fmt.Sprintf("sb2 restarted at %s (out of the load balancer, %v, SIGTERM, drain, start, back: %v in all)",
			t.Clock(t.RestartAt), stack.PreStop, round(d.restart.to.Sub(d.restart.from))))
	}
	if !d.killed.from.IsZero() {
		chaos = append(chaos, fmt.Sprintf("sb1 killed with SIGKILL at %s, mid-burst, and started again: back in %v",
			d.clockOf(d.killed.from), round(d.killed.to.Sub(d.killed.from))))
		if r.handover != nil {
			chaos = append(chaos, "    "+r.handover.line())
		}
	}
	if !d.redisStop.from.IsZero() {
		chaos = append(chaos, fmt.Sprintf("Redis killed at %s and started again after %v; both instances ready %v later",
			t.Clock(t.RedisStopAt), round(d.redisStop.to.Sub(d.redisStop.from)), round(d.recovered.Sub(d.redisStop.to))))
	}
	if !d.burst.from.IsZero() {
		b := max(r.beforeRate, 1)
		n := 0
		for _, o := range d.inbound {
			if o.burst {
				n++
			}
		}
		chaos = append(chaos, fmt.Sprintf("inbound burst at %s: %d calls in %v; callbacks offered %.0f/s against %.0f/s before (%.1fx),",
			t.Clock(t.BurstAt), n, round(d.burst.to.Sub(d.burst.from)), r.burstOffered, r.beforeRate, r.burstOffered/b),
			fmt.Sprintf("  busiest second %.0f (%.1fx)", r.burstPeak, r.burstPeak/b))
	}
	if len(chaos) == 0 {
		chaos = []string{"none"}
	}
	p("chaos:    %s", strings.Join(chaos, ";\n          "))
	u := r.cpu
	p("cpu:      sb1 %v, sb2 %v, redis-server %v, this process (carriers, proxy, load) %v in %v of wall time:",
		u.sb1.Round(time.Second), u.sb2.Round(time.Second), u.redis.Round(time.Second), u.drill.Round(time.Second), u.wall.Round(time.Second))
	p("          %.0f%% of the machine's %d vCPUs; load average %s before, %s at the end; this process woke up late by p99 %v,",
		100*(u.sb1+u.sb2+u.redis+u.drill).Seconds()/u.wall.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU(), r.loadBefore, machine.LoadAvg(),
		round(pct(d.stalls, .99)))
	p("          at worst %v (the machine's scheduling, shared with whatever else runs on it)", round(pct(d.stalls, 1)))

	p("")
	p("windows of the primary (routed = from the window's start to the last call sent to the primary before its breaker")
	p("was open on every running instance; trials = calls sent to it after that, at most one per open period)")
	p("  %-5s %-11s %-9s %-9s %-27s %-8s %-6s %-7s %-7s %s", "win", "incident", "drill", "kind", "primary", "routed", "goal", "before", "trials", "result")
	for _, wr := range r.windows {
		incidentAt := "-"
		if t.Incident {
			incidentAt = t.Clock(wr.w.From) + "-" + t.Clock(wr.w.To)
		}
		drillAt := fmt.Sprintf("%.0fs-%.0fs", t.At(wr.w.From).Seconds(), t.At(wr.w.To).Seconds())
		if wr.goal == 0 {
			p("  %-5s %-11s %-9s %-9s %-27s %-8s %-6s %-7d %-7s ok: %d calls stayed on the primary, setup p50 %v",
				wr.w.Name, incidentAt, drillAt, wr.w.Kind, wr.w.Kind.Describe(), "-", "-", wr.before, "-", len(wr.primary), round(pct(wr.primary, .5)))
			continue
		}
		routed, result := round(wr.routed).String(), "PASS"
		if wr.opened.IsZero() && !wr.pass {
			routed = "never"
		}
		if !wr.pass {
			result = "FAIL: " + wr.why
		}
		p("  %-5s %-11s %-9s %-9s %-27s %-8s %-6s %-7d %-7s %s", wr.w.Name, incidentAt, drillAt, wr.w.Kind, wr.w.Kind.Describe(),
			routed, "<="+wr.goal.String(), wr.before, fmt.Sprintf("%d/%d", wr.trials, wr.allowed), result)
	}

	p("")
	p("calls")
	p("  outbound placed                              %d", r.placed)
	p("    to numbers that answer (counted)           %d", r.answering)
	p("      completed                                %d", r.completed)
	p("      failed                                   %d%s", r.failed.total(), bracket(r.failed))
	p("    not counted: caught by Redis stop, SIGKILL %d%s", r.excluded.total(), bracket(r.excluded))
	p("    final outcomes as expected                 %d%s", r.finals.total(), bracket(r.finals))
	if len(r.finalsBad) > 0 {
		p("    final outcomes NOT as expected             %d%s", r.finalsBad.total(), bracket(r.finalsBad))
	}
	p("  inbound, steady and burst (counted)          %d", r.inbound)
	p("      completed                                %d", r.inCompleted)
	p("      failed                                   %d%s", r.inFailed.total(), bracket(r.inFailed))
	if len(r.inExcluded) > 0 {
		p("    not counted: caught by Redis stop, SIGKILL %d%s", r.inExcluded.total(), bracket(r.inExcluded))
	}
	base := pct(r.straight, .5)
	extra := func(q float64) time.Duration { return max(pct(r.failedOver, q)-base, 0) }
	p("  failed over (primary failed, secondary took it)  %d: extra setup p50 %v, p99 %v (over a call placed straight",
		len(r.failedOver), round(extra(.5)), round(extra(.99)))
	p("      on the secondary: p50 %v; on a healthy primary: p50 %v)", round(base), round(pct(r.onPrimary, .5)))
	if len(r.overWhy) > 0 {
		p("      first attempts that failed: %s", r.overWhy)
	}
	if len(r.inSetup) > 0 {
		p("  inbound twilio calls answered by Switchboard's TwiML after p50 %v, p99 %v, max %v (callers hang up after %v)",
			round(pct(r.inSetup, .5)), round(pct(r.inSetup, .99)), round(pct(r.inSetup, 1)), o.inboundTalk)
	}
	p("  carried, but Switchboard never learnt the end %d%s", r.unfinished.total(), bracket(r.unfinished))
	for _, e := range r.examples {
		p("  e.g. %s", e)
	}
	if ev.unsettled > 0 || len(ev.unreadable) > 0 {
		p("  (carrier calls still up at the end: %d; call records that could not be read: %d)", ev.unsettled, len(ev.unreadable))
	}

	reconcileStats(ev).print(p, ev, r, o)

	p("")
	p("callbacks                                      %-12s %-12s", "primary", "secondary")
	row := func(name string, f func(sim.Stats) int64) {
		p("  %-44s %-12d %-12d", name, f(ev.stats["primary"]), f(ev.stats["secondary"]))
	}
	row("sent (HTTP attempts, retries and duplicates)", func(s sim.Stats) int64 { return s.CallbacksSent })
	row("acknowledged with 2xx", func(s sim.Stats) int64 { return s.CallbacksDelivered })
	row("not acknowledged (503, 502, errors)", func(s sim.Stats) int64 { return s.CallbacksFailed })
	row("dropped by the carrier's own fault", func(s sim.Stats) int64 { return s.CallbacksDropped })
	row("duplicates sent", func(s sim.Stats) int64 { return s.CallbacksDuplicated })
	lostBy := map[string]int64{}
	for _, l := range r.lost {
		lostBy[l.carrier]++
	}
	p("  %-44s %-12d %-12d", "lost: acknowledged, not in the store", lostBy["primary"], lostBy["secondary"])
	row("3xx answers seen", func(s sim.Stats) int64 { return s.RedirectsSeen })
	row("TCP connections opened", func(s sim.Stats) int64 { return s.TCPConnectionsOpened })
	p("  Switchboard's ack time (its own histogram, bucket bounds), whole run: %s", ackhist.Line(r.acks))
	if d.burstAcks != nil {
		p("      during the burst: %s", ackhist.Line(d.burstAcks))
	}
	if !d.redisStop.from.IsZero() {
		p("  while Redis was stopped: %d callbacks answered 503 (%d of them the carrier's retries); none acknowledged",
			r.redis503, r.redisRetry)
	}
	for _, np := range d.s.Proxies() {
		px := np.P.Stats()
		p("  %s: %d connections in, %d out; %d requests moved to another instance, %d held for a restart,",
			np.Name, px.ConnsIn, px.ConnsOut, px.Rerouted, px.Held)
		p("      %d answered 502, %d 3xx, %d abandoned by their client", px.BadGateway, px.Redirects, px.Abandoned)
		if t := tally(px.Errors); len(t) > 0 {
			p("      502s: %s", t)
		}
	}
	for i, l := range append(slices.Clone(r.lost), r.unverified...) {
		if i == 10 {
			p("  ... and %d more", len(r.lost)+len(r.unverified)-10)
			break
		}
		p("  LOST? %s %s, call %q, acknowledged at %s: %s", l.carrier, l.eventID, l.callID, d.clockOf(l.at), l.why)
	}

	p("")
	p("agents")
	if r.agents == nil {
		p("  none (-agents 0)")
	} else {
		rang, answered, reconnects, endedBy, errsBy := r.agents.Summary()
		ended, errs := tally(endedBy), tally(errsBy)
		p("  %d agents (softphones with pion peers, signed in through the load balancer); wrap-up %v", len(r.agents.Agents), o.wrapUp)
		p("  rung %d times, answered %d calls; signed in again %d times after losing their instance", rang, answered, reconnects)
		p("  inbound calls carried and answered by an agent: steady %d of %d, burst %d of %d (the rest waited on the hold tone",
			r.inByAgent["steady"], r.inCarried["steady"], r.inByAgent["burst"], r.inCarried["burst"])
		p("      until the caller hung up after %v)", o.inboundTalk)
		p("  calls ended, by reason: %s", orNone(ended))
		if len(errs) > 0 {
			p("  errors sent to softphones, by code: %s", errs)
		}
		p("  stuck in a wrong state once every call had ended: %d%s", len(r.stuck), listOf(r.stuck))
	}

	p("")
	p("goals")
	for _, g := range r.goals() {
		p("  %-4s  %-80s %s", g.status, g.what, g.got)
	}
	for i, s := range r.disagree {
		if i == 10 {
			p("  ... and %d more disagreements", len(r.disagree)-10)
			break
		}
		p("  DISAGREE %s", s)
	}
	return werr
}

func orNone(t tally) string {
	if len(t) == 0 {
		return "none"
	}
	return t.String()
}

func listOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	if len(s) > 10 {
		s = append(s[:10:10], fmt.Sprintf("and %d more", len(s)-10))
	}
	return " (" + strings.Join(s, "; ") + ")"
}

func bracket(t tally) string {
	if len(t) == 0 {
		return ""
	}
	return " (" + t.String() + ")"
}

// missed lists the goals that failed, for the exit status.
func (r *result) missed() []string {
	var out []string
	for _, g := range r.goals() {
		if g.status == "FAIL" {
			out = append(out, g.what+": "+g.got)
		}
	}
	return out
}
