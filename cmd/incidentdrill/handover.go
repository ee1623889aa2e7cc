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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/agentpool"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/machine"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/cmd/internal/rig"
	"github.com/switchboard/switchboard/webrtc/agentsim"
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
	h.measure()
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
