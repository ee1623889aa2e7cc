package main

// The hand-over mode: bridged calls outlive the instance that carries them (issue 18).
//
//	go run ./cmd/incidentdrill -mode handover -calls 50 -carrier twilio -signal kill
//
// It signs in as many agents as calls, half on each instance, sets them away, and has the
// carrier bring the calls in to sb1, where they queue (so sb1 holds every call's carrier
// media); then the agents come back and answer them, half of them through a relay from sb2.
// Once every call has two-way audio (the caller hears the agent's 440 Hz, the agent the
// caller's 1000 Hz), sb1 is stopped with SIGKILL or SIGTERM and the mode measures, per call
// and in both directions, the silence until the audio came back on sb2: the caller's side
// from the simulator's tone watch, the agent's from its softphone's (agentsim.ToneWatch,
// across the softphone's sign-in again when its session was on sb1). Then the callers hang
// up and it checks the records and the agents.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/agentpool"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/machine"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/cmd/internal/rig"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// The hand-over's goals (issue 18).
const (
	handoverBackGoal    = 0.99
	handoverSilenceGoal = 3 * time.Second
)

// handoverQueueTimeout is the instances' queue timeout in the hand-over mode: every call
// waits in the queue until the agents come back from away.
const handoverQueueTimeout = 2 * time.Minute

// How long each step may take before the mode gives up on it.
const (
	queuedWithin   = 30 * time.Second
	bridgedWithin  = 45 * time.Second
	backWithin     = 25 * time.Second // longer than the Twilio grace pause (20 s): no call is back after it
	recordsWithin  = 30 * time.Second
	heardRecently  = 300 * time.Millisecond
	bridgedAudioOK = time.Second // two-way audio before the stop, and after it, before the hang-up
)

// movedCall is one call of the hand-over and what became of it.
type movedCall struct {
	sid, id string
	agent   *agentpool.Agent
	// Where it was at the stop: its carrier media on sb1, its agent's session on sb1.
	mediaOnStopped, agentOnStopped bool

	movedAt time.Time // when the carrier's stream was seen away from sb1
	back    bool      // two-way audio again before the hang-up
	// backAfter is from the stop to the end of the silence it made, the later of the two sides.
	backAfter           time.Duration
	callerGap, agentGap time.Duration // the silence the stop made, each side
	droppedBy           string        // the carrier ended it before the hang-up: its status
	liveState, endState string        // the record while live (after the stop), and at the end
	carrierStatus       string        // the carrier's last word
	lastSource          string        // where the record's last history entry came from
}

// handoverRun is one run of the hand-over mode: the stack, the carrier of its calls, and
// what became of them.
type handoverRun struct {
	s         *stack.Stack
	o         options
	agents    *agentpool.Pool
	c         *sim.Carrier
	carrierID string
	calls     []*movedCall
	stoppedAt time.Time
	exitedIn  time.Duration // from the signal to the process's exit
	stuck     []string
	notes     []string
}

func runHandover(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	switch {
	case o.calls < 1 || o.calls > 200:
		return errors.New("-calls: want 1 to 200")
	case o.carrier != "twilio" && o.carrier != "telnyx":
		return fmt.Errorf("-carrier %q: want twilio or telnyx", o.carrier)
	case o.signal != "kill" && o.signal != "term":
		return fmt.Errorf("-signal %q: want kill or term", o.signal)
	case o.reconcileAfter <= 0:
		return errors.New("-reconcile-after: want a positive duration")
	}
	o.agents = o.calls
	o.talk = 0 // callers stay until the mode hangs them up
	dir, cleanup, err := workDir(ctx, &o, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	loadBefore := machine.LoadAvg()
	s, err := stack.Start(ctx, stackOptions(o), dir)
	if err != nil {
		return err
	}
	defer s.Close()
	h := &handoverRun{s: s, o: o, c: s.Primary, carrierID: "primary"}
	if o.carrier == "telnyx" {
		h.c, h.carrierID = s.Secondary, "secondary"
	}
	logf := func(format string, a ...any) {
		_, _ = fmt.Fprintf(stderr, "incidentdrill: "+format+"\n", a...) // progress notes; a closed stderr must not stop the run
	}
	logf("handover: %d %s calls on sb1 (%s), then %s; sb2 %s; load balancer %s", o.calls, o.carrier,
		s.Instances[0].Public, map[string]string{"kill": "SIGKILL", "term": "SIGTERM"}[o.signal], s.Instances[1].Public, s.LBURL)

	if h.agents, err = agentpool.Start(ctx, s, agentOptions(s, o)); err != nil {
		return err
	}
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer h.agents.Stop() // after stopAgents, before the stack closes
	defer stopAgents()

	if err := h.bringUp(ctx, agentCtx, logf); err != nil {
		return err
	}
	if err := h.stop(ctx, logf); err != nil {
		return err
	}
	h.awaitBack(ctx)
	h.finish(ctx, logf)
	stopAgents()
	if o.logs != "" {
		if err := h.writeCalls(filepath.Join(dir, "handover-calls.txt")); err != nil {
			logf("handover: the calls' lines not written: %v", err)
		}
	}

	command := strings.TrimSpace("go run ./cmd/incidentdrill " + strings.Join(args[1:], " "))
	goals := h.print(stdout, command, loadBefore)
	var missed []string
	for _, g := range goals {
		if g.status == "FAIL" {
			missed = append(missed, g.what+": "+g.got)
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("missed goals:\n  %s", strings.Join(missed, "\n  "))
	}
	return nil
}

// bringUp queues the calls on sb1 while every agent is away, then lets the agents answer,
// and waits until every call has two-way audio.
func (h *handoverRun) bringUp(ctx, agentCtx context.Context, logf func(string, ...any)) error {
	for _, a := range h.agents.Agents {
		if err := setAvailability(ctx, a.Current(), "away"); err != nil {
			return fmt.Errorf("%s away: %w", a.ID, err)
		}
	}
	kind := sim.Twilio
	if h.o.carrier == "telnyx" {
		kind = sim.Telnyx
	}
	for i := range h.o.calls {
		sid, err := h.c.Inbound(sim.InboundRequest{Kind: kind, From: fmt.Sprintf("+1446%07d", i),
			StatusCallbackEvents: []string{"initiated", "ringing", "answered", "completed"}})
		if err != nil {
			return fmt.Errorf("inbound call %d: %w", i, err)
		}
		h.calls = append(h.calls, &movedCall{sid: sid})
		sleep(ctx, 20*time.Millisecond) // a steady arrival, not one burst
	}
	// Each call's stream is pointed at sb1, which queues it; should one land elsewhere all
	// the same (the report counts the calls whose media sb1 held), it is still waited for.
	err := rig.WaitFor(ctx, queuedWithin, func() bool {
		for _, c := range h.calls {
			r, err := h.c.CallReport(c.sid)
			if err != nil || r.Status != "in-progress" || r.StreamsOpen != 1 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("the calls did not all reach the queue within %v: %s", queuedWithin, h.whyNotQueued())
	}
	for _, c := range h.calls {
		if c.id, err = h.callID(ctx, c.sid); err != nil {
			return err
		}
	}
	logf("handover: %d calls queued; agents back", len(h.calls))

	h.agents.Run(agentCtx)
	for _, a := range h.agents.Agents {
		if err := a.Current().Send(map[string]any{"type": "availability", "state": "available"}); err != nil {
			return fmt.Errorf("%s available: %w", a.ID, err)
		}
	}
	byID := map[string]*movedCall{}
	for _, c := range h.calls {
		byID[c.id] = c
	}
	err = rig.WaitFor(ctx, bridgedWithin, func() bool {
		for _, a := range h.agents.Agents {
			for id := range a.Answered() {
				if c := byID[id]; c != nil {
					c.agent = a
				}
			}
		}
		now := time.Now()
		for _, c := range h.calls {
			if c.agent == nil || !h.twoWay(c, now) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("the calls did not all have two-way audio within %v: %s", bridgedWithin, h.whyNotBridged())
	}
	// A little more two-way audio, so the silence the stop makes starts from a steady call.
	sleep(ctx, bridgedAudioOK)
	logf("handover: %d calls bridged with two-way audio", len(h.calls))
	return nil
}

// twoWay says whether both sides of c heard the other recently.
func (h *handoverRun) twoWay(c *movedCall, now time.Time) bool {
	r, err := h.c.CallReport(c.sid)
	return err == nil && now.Sub(r.ToneHeardAt) < heardRecently && now.Sub(c.agent.Ear.LastHeard()) < heardRecently
}

func (h *handoverRun) whyNotQueued() string {
	var out []string
	for _, c := range h.calls {
		r, err := h.c.CallReport(c.sid)
		if err != nil || r.Status != "in-progress" || r.StreamsOpen != 1 {
			out = append(out, fmt.Sprintf("%s: %s, %d streams open at %s %v", c.sid, r.Status, r.StreamsOpen, r.StreamURL, r.Notes))
		}
	}
	return summarize(out)
}

func (h *handoverRun) whyNotBridged() string {
	var out []string
	now := time.Now()
	for _, c := range h.calls {
		switch {
		case c.agent == nil:
			out = append(out, c.id+": no agent answered it")
		case !h.twoWay(c, now):
			r, _ := h.c.CallReport(c.sid)
			out = append(out, fmt.Sprintf("%s (%s): caller last heard the agent %v ago, agent the caller %v ago", c.id, c.agent.ID,
				round(now.Sub(r.ToneHeardAt)), round(now.Sub(c.agent.Ear.LastHeard()))))
		}
	}
	return summarize(out)
}

func summarize(lines []string) string {
	if len(lines) > 5 {
		lines = append(lines[:5:5], fmt.Sprintf("and %d more", len(lines)-5))
	}
	return strings.Join(lines, "; ")
}

// stop notes where every call sits, then stops sb1 with the signal, taking it out of the load
// balancer's rotation as an orchestrator does.
func (h *handoverRun) stop(ctx context.Context, logf func(string, ...any)) error {
	onSB1 := wsPrefix(h.s.Instances[0].Public)
	for _, c := range h.calls {
		if r, err := h.c.CallReport(c.sid); err == nil {
			c.mediaOnStopped = strings.HasPrefix(r.StreamURL, onSB1) && r.StreamsOpen > 0
		}
		c.agentOnStopped = c.agent.Home == h.s.Instances[0].Public && c.agent.Reconnects() == 0
	}
	proc, exited := h.s.Instances[0].Release()
	if proc == nil {
		return errors.New("sb1 is not running")
	}
	h.s.LB.Backends()[0].Drain(true)
	sig := syscall.SIGKILL
	if h.o.signal == "term" {
		sig = syscall.SIGTERM
	}
	h.stoppedAt = time.Now()
	if err := proc.Signal(sig); err != nil {
		return fmt.Errorf("signal sb1: %w", err)
	}
	if h.o.hangupAtKill {
		// The callers give up the moment the instance goes: no survivor has claimed their
		// calls yet, so every re-point finds the call over.
		for _, c := range h.calls {
			if err := h.c.Hangup(c.sid); err != nil {
				h.notes = append(h.notes, fmt.Sprintf("caller of %s did not hang up: %v", c.id, err))
			}
		}
	}
	logf("handover: sb1 sent %s", map[string]string{"kill": "SIGKILL", "term": "SIGTERM"}[h.o.signal])
	select {
	case <-exited:
	case <-time.After(stack.DrainTimeout + 20*time.Second):
		h.notes = append(h.notes, "sb1 did not exit within "+(stack.DrainTimeout+20*time.Second).String()+" of SIGTERM; killed")
		_ = proc.Kill() // the stop is over either way
		<-exited
	case <-ctx.Done():
		_ = proc.Kill()
		<-exited
		return ctx.Err()
	}
	h.exitedIn = time.Since(h.stoppedAt)
	return nil
}

// awaitBack waits until every call's carrier stream has left sb1 and both sides hear each
// other again, or backWithin has passed.
func (h *handoverRun) awaitBack(ctx context.Context) {
	if h.o.hangupAtKill {
		return
	}
	onSB1 := wsPrefix(h.s.Instances[0].Public)
	// A call not back in time is one the report counts as such: the wait's error says nothing more.
	_ = rig.WaitFor(ctx, backWithin, func() bool {
		now, all := time.Now(), true
		for _, c := range h.calls {
			if c.back {
				continue
			}
			r, err := h.c.CallReport(c.sid)
			if err != nil {
				all = false
				continue
			}
			if c.movedAt.IsZero() && r.StreamsOpen > 0 && !strings.HasPrefix(r.StreamURL, onSB1) {
				c.movedAt = now
			}
			if !c.movedAt.IsZero() && r.ToneHeardAt.After(c.movedAt) && c.agent.Ear.LastHeard().After(c.movedAt) {
				c.back = true
				continue
			}
			all = false
		}
		return all
	})
}

// finish checks the calls are still up and their records live, lets them talk a little more,
// hangs them up, and checks the records end completed and the agents are free.
func (h *handoverRun) finish(ctx context.Context, logf func(string, ...any)) {
	if !h.o.hangupAtKill {
		sleep(ctx, bridgedAudioOK)
		now := time.Now()
		for _, c := range h.calls {
			// Still two-way at the end: a call that came back and went silent again is not back.
			c.back = c.back && h.twoWay(c, now)
			if r, err := h.c.CallReport(c.sid); err == nil && terminal[r.Status] {
				c.droppedBy = r.Status
			}
			if rec, err := h.record(ctx, c.id); err == nil {
				c.liveState = rec.State
			}
		}
		at := time.Now()
		for _, c := range h.calls {
			c.agent.Ear.Finish(at)
			if err := h.c.Hangup(c.sid); err != nil && c.droppedBy == "" {
				h.notes = append(h.notes, fmt.Sprintf("caller of %s did not hang up: %v", c.id, err))
			}
		}
		logf("handover: %d of %d calls back; callers hung up", h.countBack(), len(h.calls))
	}
	// The records must end as the carrier ended the calls; without sb1, some of the carrier's
	// callbacks go nowhere, and the reconciler asks the carrier.
	// Records still wrong after the wait are the report's to list.
	_ = rig.WaitFor(ctx, h.o.reconcileAfter+recordsWithin, func() bool {
		all := true
		for _, c := range h.calls {
			if r, err := h.c.CallReport(c.sid); err == nil {
				c.carrierStatus = r.Status
			}
			if rec, err := h.record(ctx, c.id); err == nil {
				c.endState = rec.State
				if n := len(rec.History); n > 0 {
					c.lastSource = rec.History[n-1].Source
				}
			}
			if c.endState != "completed" || c.carrierStatus != "completed" {
				all = false
			}
		}
		return all
	})
	h.stuck = h.agents.Stuck(ctx, h.o.wrapUp+10*time.Second)
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

// record reads a call from sb2, the instance left.
func (h *handoverRun) record(ctx context.Context, id string) (apiCall, error) {
	var c apiCall
	code, body, err := h.s.Do(ctx, h.s.Instances[1].URL(), http.MethodGet, "/api/calls/"+url.PathEscape(id), nil)
	if err == nil && (code != http.StatusOK || json.Unmarshal(body, &c) != nil) {
		err = fmt.Errorf("GET /api/calls/%s: %d", id, code)
	}
	return c, err
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

// callID finds our call id for the carrier's call, as an operator would.
func (h *handoverRun) callID(ctx context.Context, sid string) (string, error) {
	var list struct {
		Calls []apiCall `json:"calls"`
	}
	q := "/api/calls?carrier_call_id=" + url.QueryEscape(sid) + "&carrier=" + h.carrierID
	code, body, err := h.s.Do(ctx, h.s.LBURL, http.MethodGet, q, nil)
	if err == nil && (code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Calls) != 1) {
		err = fmt.Errorf("answered %d %s", code, clip(string(body), 200))
	}
	if err != nil {
		return "", fmt.Errorf("our call for %s: %w", sid, err)
	}
	return list.Calls[0].ID, nil
}

// setAvailability sets an agent away or available and waits for the softphone to show it.
func setAvailability(ctx context.Context, phone *agentsim.SimSoftphone, state string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := phone.Send(map[string]any{"type": "availability", "state": state}); err != nil {
		return err
	}
	_, err := phone.Expect(ctx, func(m agentsim.SoftphoneMessage) bool { return m.Type == "availability" && m.State == state })
	return err
}

// wsPrefix is the start of a media stream URL on the instance whose public URL is base.
func wsPrefix(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/" }

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
