package main

// The hand-over mode's measuring and its report: the silence the stop made on each side of
// every call, and the goals of issue 18.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/machine"
	"github.com/switchboard/switchboard/webrtc/media"
)

// The hand-over's goals (issue 18).
const (
	handoverBackGoal    = 0.99
	handoverSilenceGoal = 3 * time.Second
)

// measure finds, per call and each side, the silence the stop made and when it ended.
func (h *handoverRun) measure() {
	for _, c := range h.calls {
		if r, err := h.c.CallReport(c.sid); err == nil {
			var end, agentEnd time.Time
			c.callerGap, end = stopGap(r.ToneGaps, h.stoppedAt)
			c.agentGap, agentEnd = stopGap(c.agent.Ear.Gaps(), h.stoppedAt)
			end = later(end, agentEnd)
			if !end.IsZero() {
				c.backAfter = end.Sub(h.stoppedAt)
			}
		}
	}
}

// stopGap is the silence the stop at t made: the first gap that ends after t, counted from
// t if it began before (a frame's worth). Later gaps are the machine's jitter, not the
// hand-over's, and a call silent until its end shows as one gap to the end.
func stopGap(gaps []media.ToneGap, t time.Time) (length time.Duration, end time.Time) {
	for _, g := range gaps {
		if e := g.Start.Add(g.Length); e.After(t) {
			return g.Length - max(0, t.Sub(g.Start)), e
		}
	}
	return 0, time.Time{}
}

func (h *handoverRun) countBack() int {
	n := 0
	for _, c := range h.calls {
		if c.back {
			n++
		}
	}
	return n
}

// refusedRepoints counts the calls whose re-point the carrier refused, from the instances'
// logs (the warning the carrier side writes for each, at any log level the mode allows).
func (h *handoverRun) refusedRepoints() int {
	ids := map[string]bool{}
	for _, in := range h.s.Instances {
		b, err := os.ReadFile(in.Log)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "media not re-pointed") {
				continue
			}
			for _, c := range h.calls {
				if strings.Contains(l, "call="+c.id) {
					ids[c.id] = true
				}
			}
		}
	}
	return len(ids)
}

// writeCalls writes a line per call, for whoever reads the logs after a missed goal.
func (h *handoverRun) writeCalls(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "stopped at %s\n", h.stoppedAt.Format(time.RFC3339Nano))
	for _, c := range h.calls {
		moved := "-"
		if !c.movedAt.IsZero() {
			moved = round(c.movedAt.Sub(h.stoppedAt)).String()
		}
		fmt.Fprintf(&b, "%s %s agent=%s media_on_sb1=%v session_on_sb1=%v moved_seen=%s back=%v back_after=%v caller_silence=%v agent_silence=%v live=%s end=%s carrier=%s dropped=%s\n",
			c.id, c.sid, c.agent.ID, c.mediaOnStopped, c.agentOnStopped, moved, c.back, round(c.backAfter), round(c.callerGap), round(c.agentGap),
			c.liveState, c.endState, c.carrierStatus, c.droppedBy)
		if r, err := h.c.CallReport(c.sid); err == nil {
			fmt.Fprintf(&b, "  caller gaps %v; notes %v\n", r.ToneGaps, r.Notes)
		}
		fmt.Fprintf(&b, "  agent gaps %v\n", c.agent.Ear.Gaps())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func summarize(lines []string) string {
	if len(lines) > 5 {
		lines = append(lines[:5:5], fmt.Sprintf("and %d more", len(lines)-5))
	}
	return strings.Join(lines, "; ")
}

// print writes the hand-over's report and returns its goals.
func (h *handoverRun) print(w io.Writer, command string, loadBefore string) []goalLine {
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(w, format+"\n", a...) } // as the drill's report
	sig := map[string]string{"kill": "SIGKILL", "term": "SIGTERM"}[h.o.signal]
	p("Hand-over: %d bridged %s calls, their instance stopped with %s", len(h.calls), h.o.carrier, sig)
	p("  command: %s", command)
	p("  machine: %s; load average before: %s", machine.Describe(), loadBefore)
	var media, sessions int
	for _, c := range h.calls {
		if c.mediaOnStopped {
			media++
		}
		if c.agentOnStopped {
			sessions++
		}
	}
	p("  on sb1 at the stop: the carrier media of %d calls, the sessions of %d of their agents (the others relayed from sb2)", media, sessions)
	if media < len(h.calls) {
		p("  (%d of the %d streams were pointed at sb2 although sb1 queued the calls)", len(h.calls)-media, len(h.calls))
	}
	p("  sb1 exited %v after the signal", round(h.exitedIn))

	var carried []*movedCall
	for _, c := range h.calls {
		if c.mediaOnStopped || c.agentOnStopped {
			carried = append(carried, c)
		}
	}
	var goals []goalLine
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	var dropped, recordsWrong []string
	for _, c := range carried {
		if c.droppedBy != "" {
			dropped = append(dropped, fmt.Sprintf("%s (%s)", c.id, c.droppedBy))
		}
		switch {
		case h.o.hangupAtKill && (c.endState != c.carrierStatus || !terminal[c.endState]):
			recordsWrong = append(recordsWrong, fmt.Sprintf("%s: %s, the carrier says %s", c.id, c.endState, c.carrierStatus))
		case !h.o.hangupAtKill && (c.liveState != "in-progress" || c.endState != "completed"):
			recordsWrong = append(recordsWrong, fmt.Sprintf("%s: %s while live, %s at the end", c.id, c.liveState, c.endState))
		}
	}
	if h.o.hangupAtKill {
		refused := h.refusedRepoints()
		p("  the callers hung up at the stop; re-points the carrier refused (the instances' logs): %d of %d calls", refused, len(carried))
		sources := tally{}
		for _, c := range carried {
			sources[c.lastSource]++
		}
		p("  last entry of each record's history, by source: %v", sources)
		goals = append(goals,
			goalLine{verdict(len(recordsWrong) == 0), "records end with the carrier's outcome", fmt.Sprintf("%d of %d wrong %s", len(recordsWrong), len(carried), summarize(recordsWrong))},
			goalLine{verdict(len(h.stuck) == 0), "stuck agents = 0", fmt.Sprintf("%d of %d %s", len(h.stuck), len(h.agents.Agents), summarize(h.stuck))})
	} else {
		var back int
		var callerGaps, agentGaps, backAfter []time.Duration
		var notBack []string
		for _, c := range carried {
			callerGaps = append(callerGaps, c.callerGap)
			agentGaps = append(agentGaps, c.agentGap)
			if c.back {
				back++
				backAfter = append(backAfter, c.backAfter)
			} else {
				notBack = append(notBack, fmt.Sprintf("%s (agent %s; caller silent %v, agent %v)", c.id, c.agent.ID, round(c.callerGap), round(c.agentGap)))
			}
		}
		share := float64(back) / float64(max(1, len(carried)))
		p("  two-way audio again: %d of %d (%.1f%%), within %v at p50, %v at p99, %v at most", back, len(carried), 100*share,
			round(pct(backAfter, 0.5)), round(pct(backAfter, 0.99)), round(slices.Max(append(backAfter, 0))))
		p("  silence the caller heard: p50 %v, p99 %v, max %v", round(pct(callerGaps, 0.5)), round(pct(callerGaps, 0.99)), round(slices.Max(append(callerGaps, 0))))
		p("  silence the agent heard:  p50 %v, p99 %v, max %v", round(pct(agentGaps, 0.5)), round(pct(agentGaps, 0.99)), round(slices.Max(append(agentGaps, 0))))
		p99 := max(pct(callerGaps, 0.99), pct(agentGaps, 0.99))
		goals = append(goals,
			goalLine{verdict(share >= handoverBackGoal && len(carried) > 0), "two-way audio again >= 99% of the calls sb1 carried",
				fmt.Sprintf("%.1f%% (%d of %d) %s", 100*share, back, len(carried), summarize(notBack))},
			goalLine{verdict(p99 <= handoverSilenceGoal && back > 0), "silence p99 <= 3s, both ways",
				fmt.Sprintf("caller %v, agent %v", round(pct(callerGaps, 0.99)), round(pct(agentGaps, 0.99)))},
			goalLine{verdict(len(dropped) == 0), "calls the carrier dropped = 0", fmt.Sprintf("%d %s", len(dropped), summarize(dropped))},
			goalLine{verdict(len(recordsWrong) == 0), "records right (in-progress while live, completed after the hang-up)",
				fmt.Sprintf("%d of %d wrong %s", len(recordsWrong), len(carried), summarize(recordsWrong))},
			goalLine{verdict(len(h.stuck) == 0), "stuck agents = 0", fmt.Sprintf("%d of %d %s", len(h.stuck), len(h.agents.Agents), summarize(h.stuck))})
	}
	for _, n := range h.notes {
		p("  note: %s", n)
	}
	p("Goals:")
	for _, g := range goals {
		p("  %-4s  %-70s %s", g.status, g.what, g.got)
	}
	return goals
}
