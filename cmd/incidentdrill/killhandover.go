package main

// The full drill's SIGKILL of sb1, seen as a hand-over (issue 18): the bridged calls whose
// carrier media sb1 held when it died must come back on sb2, with two-way audio, while the
// carriers' other faults go on. The drill notes them at the kill; the report measures them
// from the carriers' tone watches (the caller hears the agent's tone again) and the agents'
// (the agent hears the caller's), up to the call's end: the drill's callers hang up -talk
// after they called, waiting included, so a call may end before its audio could come back,
// and such a call is counted apart rather than as one that did not come back.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/agentpool"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
)

// killedCall is a bridged call whose carrier media sb1 held when it was killed.
type killedCall struct{ carrier, sid string }

// bridgedOn notes the calls whose carrier media instance i holds and whose caller hears the
// agent now: bridged calls, not queued or ringing ones.
func bridgedOn(s *stack.Stack, i int) []killedCall {
	prefix := wsPrefix(s.Instances[i].Public)
	now := time.Now()
	var out []killedCall
	for id, c := range s.Carriers() {
		for _, r := range c.Calls() {
			if r.Status == "in-progress" && r.StreamsOpen > 0 && strings.HasPrefix(r.StreamURL, prefix) &&
				now.Sub(r.ToneHeardAt) < heardRecently {
				out = append(out, killedCall{id, r.SID})
			}
		}
	}
	return out
}

// handoverOutcome is what became of the bridged calls sb1 carried at the SIGKILL.
type handoverOutcome struct {
	carried int
	back    int
	// endedFirst ended (their callers hung up, as planned) before both sides heard each
	// other again, and sooner after the kill than the silence the goal allows: too soon
	// to tell.
	endedFirst int
	notBack    []string
	// backAfter is from the kill to two-way audio again; the silences are the kill's gap on
	// each side, for the calls that came back.
	backAfter, callerGaps, agentGaps []time.Duration
}

// killOutcome measures the calls noted at the kill once the run is over.
func killOutcome(d *drill, ev *evidence, agents *agentpool.Pool) *handoverOutcome {
	if len(d.killedCalls) == 0 && d.killed.from.IsZero() {
		return nil
	}
	out := &handoverOutcome{carried: len(d.killedCalls)}
	at := d.killed.from
	for _, k := range d.killedCalls {
		r, ok := ev.reports[k.carrier][k.sid]
		id := ev.callOf[k.carrier][k.sid]
		if !ok {
			out.notBack = append(out.notBack, k.sid+": no carrier record")
			continue
		}
		callerGap, callerEnd := stopGap(r.ToneGaps, at)
		if callerEnd.IsZero() && r.ToneHeardAt.After(at) {
			callerEnd = at // never silent
		}
		var agentGap time.Duration
		var agentEnd time.Time
		agent := (*agentpool.Agent)(nil)
		if agents != nil && id != "" {
			for _, a := range agents.Agents {
				if _, ok := a.Answered()[id]; ok {
					agent = a
				}
			}
		}
		if agent != nil {
			agentGap, agentEnd = stopGap(agent.Ear.Gaps(), at)
			if agentEnd.IsZero() && agent.Ear.LastHeard().After(at) {
				agentEnd = at
			}
			if answeredOther(agent, id, at, agentEnd) {
				agentEnd = time.Time{} // the tone it heard again was another call's
			}
		}
		// Back: both sides heard each other again before the call ended (a last gap the
		// carrier closed at the call's end is silence to the end, not a return).
		end := r.EndedAt
		if end.IsZero() {
			end = time.Now()
		}
		backBy := func(t time.Time) bool { return !t.IsZero() && t.Before(end.Add(-frameSlack)) }
		switch {
		case backBy(callerEnd) && backBy(agentEnd):
			out.back++
			out.backAfter = append(out.backAfter, later(callerEnd, agentEnd).Sub(at))
			out.callerGaps = append(out.callerGaps, callerGap)
			out.agentGaps = append(out.agentGaps, agentGap)
		case end.Sub(at) < handoverSilenceGoal:
			out.endedFirst++
		default:
			who := "no agent answered it"
			if agent != nil {
				who = "agent " + agent.ID
			}
			out.notBack = append(out.notBack, fmt.Sprintf("%s (%s): silent for the caller %v, for the agent %v", id, who, round(callerGap), round(agentGap)))
		}
	}
	return out
}

// frameSlack is how far before a call's end a tone must be heard again to count: a few
// frames, so the watch's last frame before the hang-up is not taken for a return.
const frameSlack = 100 * time.Millisecond

// answeredOther says whether agent answered a call other than id between from and to.
func answeredOther(a *agentpool.Agent, id string, from, to time.Time) bool {
	for other, t := range a.Answered() {
		if other != id && t.After(from) && (to.IsZero() || t.Before(to)) {
			return true
		}
	}
	return false
}

// line says what became of the calls, for the report.
func (h *handoverOutcome) line() string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("bridged calls whose media sb1 held at the SIGKILL: %d; two-way again %d (within %v at p99), their callers hung up first %d; silence p50/p99/max: caller %v/%v/%v, agent %v/%v/%v",
		h.carried, h.back, round(pct(h.backAfter, 0.99)), h.endedFirst,
		round(pct(h.callerGaps, 0.5)), round(pct(h.callerGaps, 0.99)), round(slices.Max(append(h.callerGaps, 0))),
		round(pct(h.agentGaps, 0.5)), round(pct(h.agentGaps, 0.99)), round(slices.Max(append(h.agentGaps, 0))))
}

// goal is the goal for them, over the calls that stayed up long enough to tell.
func (h *handoverOutcome) goal() goalLine {
	what := "bridged calls sb1 carried at the SIGKILL: two-way again >= 99%, silence p99 <= 3s"
	if h == nil {
		return goalLine{"n/a", what, "no SIGKILL (-kill-instance=false)"}
	}
	measured := h.carried - h.endedFirst
	if measured == 0 {
		return goalLine{"n/a", what, fmt.Sprintf("none to measure (%d bridged on sb1, %d hung up first)", h.carried, h.endedFirst)}
	}
	share := float64(h.back) / float64(measured)
	p99 := max(pct(h.callerGaps, 0.99), pct(h.agentGaps, 0.99))
	status := "PASS"
	if share < handoverBackGoal || p99 > handoverSilenceGoal {
		status = "FAIL"
	}
	return goalLine{status, what, fmt.Sprintf("%d of %d (%.0f%%), silence p99 %v%s", h.back, measured, 100*share, round(p99), listOf(h.notBack))}
}
