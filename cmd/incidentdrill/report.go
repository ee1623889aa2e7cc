package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/ackhist"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/agentpool"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/incident"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/store"
)

// redisGrace is how long after Redis is back, and both instances say they are ready again, a
// call may still fail because it was down: a voice webhook waits up to 1.5 s for the store
// before apologising.
const redisGrace = 2 * time.Second

// completionGoal is the share of the calls a healthy carrier could carry that must complete.
const completionGoal = 0.999

// tally counts things by reason.
type tally map[string]int

func (t tally) total() int {
	n := 0
	for _, v := range t {
		n += v
	}
	return n
}

// String lists the reasons, most frequent first.
func (t tally) String() string {
	keys := slices.Collect(maps.Keys(t))
	slices.SortFunc(keys, func(a, b string) int {
		if t[a] != t[b] {
			return t[b] - t[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, t[k]))
	}
	return strings.Join(parts, "; ")
}

// windowResult is how Switchboard handled one window of the primary.
type windowResult struct {
	w       incident.Window
	at      span
	goal    time.Duration
	opened  time.Time     // first sample with the primary open on every instance up; zero: never
	routed  time.Duration // from the start to the last call sent to the primary before that
	before  int           // calls that tried the primary in the window before it was open everywhere
	trials  int           // calls that tried the primary after (the half-open trial calls)
	allowed int           // at most one trial call per open period
	primary []time.Duration
	pass    bool
	why     string
}

// result is the whole analysis of a run.
type result struct {
	// outbound calls by destination, and what became of them
	placed                              int
	answering, completed                int
	failed, excluded                    tally
	finals, finalsBad                   tally
	failedOver                          []time.Duration // setup of calls that failed over
	straight                            []time.Duration // setup of calls placed straight on the secondary
	onPrimary                           []time.Duration // setup of calls accepted by a healthy primary at once
	inbound, inCompleted                int
	inFailed, inExcluded                tally
	examples                            []string        // a few failed calls, with when and how
	inSetup                             []time.Duration // inbound Twilio calls: from the call to Switchboard's answer
	unfinished                          tally
	disagree                            []string
	windows                             []windowResult
	acked                               int
	lost, unverified                    []lostEvent
	redirects                           int64
	burstOffered, burstPeak, beforeRate float64
	redis503, redisRetry                int // callbacks answered 503 while Redis was stopped, and how many were retries
	cpu                                 usage
	agents                              *agentpool.Pool
	stuck                               []string
	inCarried, inByAgent                tally // inbound calls carried, and answered by an agent: steady, burst
	overWhy                             tally // why calls failed over, and in which window
	acks                                map[string]ackhist.Histogram
	loadBefore                          string           // the machine's load average as the drill started
	lag                                 goalLine         // how fast reconciled endings were learnt
	handover                            *handoverOutcome // the bridged calls sb1 carried at the SIGKILL
}

func analyse(d *drill, ev *evidence, agents *agentpool.Pool, stuck []string, acks map[string]ackhist.Histogram) *result {
	r := &result{agents: agents, stuck: stuck, acks: acks, failed: tally{}, excluded: tally{}, finals: tally{}, finalsBad: tally{},
		inFailed: tally{}, inExcluded: tally{}, unfinished: tally{}, inCarried: tally{}, inByAgent: tally{}, overWhy: tally{}}
	redis := span{}
	if !d.redisStop.from.IsZero() {
		redis = span{d.redisStop.from, later(d.redisStop.to, d.recovered).Add(redisGrace)}
	}
	killed := d.killedSpan()

	for _, p := range d.calls {
		r.placed++
		carrier, sid := p.carrier, p.carrierCallID
		if sid == "" { // the record does not name the carrier's call
			carrier, sid = ev.sidOf[p.id][0], ev.sidOf[p.id][1]
		}
		rep, known := ev.reports[carrier][sid]
		switch {
		case p.dest == invalid:
			if p.status == 422 && len(p.attempts) > 0 {
				r.finals["invalid number: 422 after a final answer"]++
			} else if redis.overlaps(p.sent, p.sent.Add(p.latency)) {
				r.excluded["invalid number while Redis was stopped"]++
			} else {
				r.finalsBad[fmt.Sprintf("invalid number: answered %d %s", p.status, clip(p.err, 60))]++
			}
			continue
		case p.status != 201:
			why := fmt.Sprintf("POST /api/calls answered %d: %s", p.status, clip(p.err, 80)) + attemptsSummary(p.attempts)
			switch {
			case redis.overlaps(p.sent, p.sent.Add(p.latency)):
				r.excluded[fmt.Sprintf("refused (%d) while Redis was stopped", p.status)]++
			case killed.overlaps(p.sent, p.sent.Add(p.latency)):
				r.excluded[fmt.Sprintf("answered %d: in flight on sb1 when SIGKILL hit it", p.status)]++
			case p.dest == busy:
				r.finalsBad["busy number: "+why]++
			default:
				r.answering++
				r.failed[why+d.burstNote(p.sent)]++
			}
			continue
		case !known:
			if p.dest == answers {
				r.answering++
			}
			r.failed["the carrier that accepted it has no record of the call"]++
			continue
		}
		r.checkRecord(ev, carrier, sid, rep)
		if p.dest == busy {
			if rep.Status == "busy" {
				r.finals["busy number: ended busy, on the carrier that took it"]++
			} else {
				r.finalsBad["busy number: the carrier ended it "+rep.Status]++
			}
			continue
		}
		ok, why := carried(rep)
		switch {
		case ok:
			r.answering++
			r.completed++
		case redis.contains(rep.AnsweredAt) && rep.StreamsOpened == 0:
			r.excluded["answered while Redis was stopped (Switchboard apologised)"]++
		case ev.refusedDuring(carrier, sid, redis):
			r.excluded["its callbacks were refused while Redis was stopped"]++
		case killed.contains(rep.AnsweredAt) && rep.StreamsOpened == 0:
			r.excluded["answered while sb1 was down after SIGKILL (its media had nowhere to go)"]++
		default:
			r.answering++
			r.failed[why+d.burstNote(rep.AnsweredAt)]++
			r.example(d, fmt.Sprintf("outbound %s on %s, placed at %s, answered at %s: %s", p.id, carrier,
				d.clockOf(p.sent), d.clockOf(rep.AnsweredAt), why))
		}
		if ok {
			switch {
			case len(p.attempts) > 1:
				r.failedOver = append(r.failedOver, p.latency)
				r.overWhy[clip(p.attempts[0].detail, 60)+" at "+d.windowAt(p.sent)]++
			case carrier == "secondary":
				r.straight = append(r.straight, p.latency)
			default:
				r.onPrimary = append(r.onPrimary, p.latency)
			}
		}
	}

	for _, o := range d.inbound {
		carrier := "primary"
		if o.kind == sim.Telnyx {
			carrier = "secondary"
		}
		rep, known := ev.reports[carrier][o.sid]
		if o.err != "" || !known {
			r.inbound++
			r.inFailed["the carrier could not place it: "+clip(o.err, 60)]++
			continue
		}
		r.checkRecord(ev, carrier, o.sid, rep)
		if o.kind == sim.Twilio && !rep.AnsweredAt.IsZero() {
			r.inSetup = append(r.inSetup, rep.AnsweredAt.Sub(rep.CreatedAt))
		}
		ok, why := carried(rep)
		if agents != nil && ok {
			k := "steady"
			if o.burst {
				k = "burst"
			}
			r.inCarried[k]++
			if agents.AnsweredBy(store.InboundCallID(carrier, o.sid)) != "" {
				r.inByAgent[k]++
			}
		}
		switch {
		case ok:
			r.inbound++
			r.inCompleted++
		case redis.contains(o.at) || redis.contains(rep.AnsweredAt):
			r.inExcluded["offered while Redis was stopped"]++
		case killed.contains(o.at) || killed.contains(rep.AnsweredAt):
			r.inExcluded["offered while sb1 was down after SIGKILL"]++
		case ev.refusedDuring(carrier, o.sid, redis):
			r.inExcluded["its webhooks were refused while Redis was stopped"]++
		default:
			r.inbound++
			r.inFailed[string(o.kind)+": "+why+d.burstNote(o.at)]++
			r.example(d, fmt.Sprintf("inbound %s %s, offered at %s, answered at %s, ended at %s: %s", o.kind, o.sid,
				d.clockOf(o.at), d.clockOf(rep.AnsweredAt), d.clockOf(rep.EndedAt), why))
		}
	}

	for _, dels := range ev.deliveries {
		for _, del := range dels {
			if redis.contains(del.At) && del.StatusCode == 503 {
				r.redis503++
				if del.Attempt > 1 {
					r.redisRetry++
				}
			}
		}
	}
	r.acked, r.lost, r.unverified = ev.lost()
	for _, st := range ev.stats {
		r.redirects += st.RedirectsSeen
	}
	for _, np := range d.s.Proxies() {
		r.redirects += np.P.Stats().Redirects
	}
	r.windows = windows(d)
	r.cpu = d.usage()
	r.burstOffered, r.burstPeak, r.beforeRate = burstRates(d, ev)
	r.lag = reconcileStats(ev).lagGoal(d.o)
	if d.o.kill {
		r.handover = killOutcome(d, ev, agents)
	}
	return r
}

// example keeps the first few failures for the report.
func (r *result) example(d *drill, s string) {
	if len(r.examples) < 6 {
		r.examples = append(r.examples, s)
	}
}

// checkRecord compares the store's final state with the carrier's. Where the carrier
// delivered every callback and Switchboard acknowledged them, they must agree; otherwise the
// difference is explained by what the carrier did not deliver.
func (r *result) checkRecord(ev *evidence, carrier, sid string, rep sim.Report) {
	if !terminal[rep.Status] {
		r.unfinished["still up at the carrier when the drill ended"]++
		return
	}
	rec, ok := ev.records[ev.callOf[carrier][sid]]
	if ok && sameEnd(rep.Status, rec.State) {
		return
	}
	st := ev.byCall[carrier][sid]
	switch {
	case !ok && st.acked == 0:
		r.unfinished[noRecord]++
	case st.dropped > 0:
		r.unfinished["the carrier dropped its callbacks (a callback window)"]++
	case st.refused503 > 0:
		r.unfinished["callbacks answered 503 while Redis was stopped, not retried by the carrier"]++
	case st.refused > 0:
		r.unfinished["callbacks not acknowledged (the proxy or an instance failed them)"]++
	default:
		r.disagree = append(r.disagree, fmt.Sprintf("%s %s: carrier %s, store %q (call %s)", carrier, sid, rep.Status, rec.State, rec.ID))
	}
}

// sameEnd says whether the store's final state is the carrier's. The simulator reports
// Telnyx calls in Twilio's words: a caller who gives up is Telnyx's originator_cancel, which
// Switchboard stores as canceled and the simulator's report calls no-answer.
func sameEnd(carrier, stored string) bool {
	return carrier == stored || carrier == "no-answer" && stored == "canceled"
}

// windows measures each window: when the primary's breaker was first open on every instance
// that answered, and the last call sent to the primary before then.
func windows(d *drill) []windowResult {
	var out []windowResult
	for i, w := range d.t.Windows {
		at := d.windows[i]
		wr := windowResult{w: w, at: at, goal: incident.Goal(w.Kind, stack.CallbackDeadline)}
		for _, s := range d.samples {
			if !at.contains(s.at) {
				continue
			}
			up, open := 0, 0
			for _, st := range s.states {
				if st != "down" {
					up++
				}
				if st == "open" {
					open++
				}
			}
			if up > 0 && open == up {
				wr.opened = s.at
				break
			}
		}
		var last time.Time
		for _, p := range d.calls {
			if !at.contains(p.sent) || !p.triedPrimary() {
				continue
			}
			if wr.opened.IsZero() || p.sent.Before(wr.opened) {
				wr.before++
				last = later(last, p.sent)
			} else {
				wr.trials++
			}
			if p.carrier == "primary" && len(p.attempts) == 1 {
				wr.primary = append(wr.primary, p.latency)
			}
		}
		if !last.IsZero() {
			wr.routed = last.Sub(at.from)
		}
		switch {
		case wr.goal == 0:
			wr.pass, wr.why = true, "not a failure: calls stay on the primary"
		case wr.before == 0 && wr.trials == 0:
			// Nothing to route around: no call went to the primary at all (its breaker was
			// open already, or open everywhere before a sample could say so).
			wr.pass = true
		case wr.opened.IsZero():
			wr.why = "the primary was never open on every instance"
		default:
			wr.allowed = int(at.to.Sub(wr.opened)/stack.OpenTimeout) + 1
			wr.pass = wr.routed <= wr.goal && wr.trials <= wr.allowed
			if wr.trials > wr.allowed {
				wr.why = fmt.Sprintf("%d calls went to the primary after it opened (at most %d trial calls)", wr.trials, wr.allowed)
			} else if !wr.pass {
				wr.why = "routed around too late"
			}
		}
		out = append(out, wr)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// burstRates measures the burst against the callbacks per second of the five seconds before
// it: offered is the steady rate plus the burst's own callbacks spread over the burst (what
// the carriers were asked to send), peak the busiest second Switchboard actually saw.
func burstRates(d *drill, ev *evidence) (offered, peak, before float64) {
	if d.burst.from.IsZero() {
		return 0, 0, 0
	}
	burstCalls := map[string]bool{}
	for _, o := range d.inbound {
		if o.burst {
			burstCalls[o.sid] = true
		}
	}
	prior := span{d.burst.from.Add(-5 * time.Second), d.burst.from}
	seconds := map[int64]int{}
	var own, steady int
	for _, dels := range ev.deliveries {
		for _, del := range dels {
			if del.Dropped {
				continue
			}
			if burstCalls[del.CallSID] {
				own++
			}
			if prior.contains(del.At) {
				steady++
			}
			if !del.At.Before(d.burst.from) && del.At.Before(d.burst.to.Add(5*time.Second)) {
				seconds[int64(del.At.Sub(d.burst.from)/time.Second)]++
			}
		}
	}
	before = float64(steady) / prior.to.Sub(prior.from).Seconds()
	offered = before + float64(own)/d.burst.to.Sub(d.burst.from).Seconds()
	for _, n := range seconds {
		peak = max(peak, float64(n))
	}
	return offered, peak, before
}

func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func round(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}
