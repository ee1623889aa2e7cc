package agents

import (
	"context"
	"errors"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/media"
)

// Warm transfer: the call's agent rings another agent to consult (transfer, mode "warm"). While
// the consulted agent rings and while they talk, the caller is on hold in the call's room
// (room.go: it hears the hold tone, nobody hears it) and the two agents hear each other. The
// call's agent then completes the transfer (the consulted agent has the call, the first is
// released), cancels it (back to the caller), or makes it a conference (all three, mixed).
// The instance holding the call's media runs all of it; the agents' instances pass their
// commands on through notices.

// Warm transfer steps (transfer_* messages) and states (transfer messages to the softphone).
const (
	consultComplete   = "complete"
	consultCancel     = "cancel"
	consultConference = "conference"
	consultDeclined   = "declined" // from the consulted agent

	transferRinging    = "ringing"
	transferConsulting = "consulting"
	transferConference = "conference"
	transferCompleted  = "completed"
	transferCanceled   = "canceled"
)

// reasonConsultEnded ends a consulted agent's part in a call that goes on without it.
const reasonConsultEnded = "consult-ended"

// consultStart rings target to consult about the call of offer o, answered by o.Agent.
func (h *Hub) consultStart(ctx context.Context, o agentdb.Offer, target string) error {
	ro, err := h.st.ConsultOffer(ctx, o.Call, o.Agent, target, h.opts.RingTimeout)
	if errors.Is(err, agentdb.ErrConsulting) {
		return transferRefused(signal.CodeBusy, "a consult is going already: complete or cancel it first")
	}
	if err != nil {
		return transferError(err)
	}
	h.send(o.Holder, notice{Type: noticeConsult, Call: o.Call, Agent: target, By: o.Agent, Instance: ro.ConsultInstance})
	return nil
}

// ConsultAction takes a warm transfer's next step (complete, cancel or conference) for the
// agent by who consults (empty: an admin, for whoever has the call). Refusals are
// *TransferError.
func (h *Hub) ConsultAction(ctx context.Context, callID, by, action string) error {
	o, err := h.st.Offer(ctx, callID)
	switch {
	case err != nil:
		return transferRefused(signal.CodeNoCall, "no such call with an agent")
	case o.State != agentdb.OfferAnswered || by != "" && o.Agent != by:
		return transferRefused(signal.CodeNoCall, "the call is not connected to you")
	case o.Consult == "":
		return transferRefused(signal.CodeNoCall, "no transfer is going on for the call")
	}
	if action != consultCancel {
		// Completing or conferencing needs the consulted agent on the line.
		p, err := h.st.Presence(ctx, o.Consult)
		if err != nil {
			return err
		}
		if p.State != agentdb.Busy || p.Call != callID {
			return transferRefused(signal.CodeRinging, "the agent has not answered yet: wait, or cancel")
		}
	}
	if action == consultComplete {
		if err := h.st.CompleteConsult(ctx, callID, o.Agent, o.Consult); err != nil {
			return transferError(err)
		}
		if _, err := h.st.Apply(ctx, call.Event{ID: callID + ":agent:" + o.Consult + ":transfer", CallID: callID,
			Detail: "transferred by agent " + o.Agent + " to agent " + o.Consult, Source: call.SourceSwitchboard}); err != nil {
			h.log.Warn("agents: transfer not recorded", "call", callID, "err", err)
		}
	}
	h.send(o.Holder, notice{Type: noticeConsultDo, Call: callID, By: o.Agent, State: action})
	return nil
}

// consultCommand is the softphone's transfer_complete, transfer_cancel or
// transfer_conference.
func (s *session) consultCommand(m signal.ClientMessage) {
	action := map[string]string{signal.TypeTransferComplete: consultComplete, signal.TypeTransferCancel: consultCancel,
		signal.TypeTransferConference: consultConference}[m.Type]
	s.mu.Lock()
	c := s.call
	s.mu.Unlock()
	if c == nil || (m.CallID != "" && c.id != m.CallID) {
		s.sendError(signal.CodeNoCall, "not on that call", m.CallID)
		return
	}
	s.hub.background(opTimeout, func(ctx context.Context) {
		err := s.hub.ConsultAction(ctx, c.id, s.agent.ID, action)
		var te *TransferError
		switch {
		case errors.As(err, &te):
			s.sendError(te.Code, te.Message, c.id)
		case err != nil:
			s.refused(signal.CodeUnavailable, "the transfer could not go on; try again", c.id, err)
		case action == consultComplete:
			s.callEnded(ctx, c.id, reasonTransferred)
		}
	})
}

// tellTransfer tells agent's softphone how its warm transfer to target goes.
func (c *heldCall) tellTransfer(agent, target, state, reason string) {
	c.hub.background(opTimeout, func(ctx context.Context) {
		if p, err := c.hub.st.Presence(ctx, agent); err == nil && p.Instance != "" {
			c.hub.send(p.Instance, notice{Type: noticeTransferState, Call: c.id, Agent: agent, By: target, State: state, Reason: reason})
		}
	})
}

// consultRing rings target (on instance) to consult with by, the call's agent.
func (c *heldCall) consultRing(by, target, instance string) {
	c.mu.Lock()
	if c.phase != phaseAnswered || c.agent != by || c.consult != "" {
		c.mu.Unlock()
		c.hub.background(opTimeout, func(ctx context.Context) { _ = c.hub.st.EndConsult(ctx, c.id, target) })
		c.tellTransfer(by, target, transferCanceled, reasonGone)
		return
	}
	c.consult, c.consultInstance = target, instance
	c.consultTimer = c.hub.after(c.hub.opts.RingTimeout, func() { c.consultRangOut(target) })
	c.mu.Unlock()
	c.hub.send(instance, notice{Type: noticeRing, Call: c.id, Agent: target, From: c.from, To: c.to, By: by,
		Holder: c.hub.opts.Instance, HolderURL: c.hub.opts.PublicURL})
	c.tellTransfer(by, target, transferRinging, "")
}

// consultRangOut: the consulted agent did not answer.
func (c *heldCall) consultRangOut(target string) {
	c.mu.Lock()
	ringing := c.consult == target && c.consultSink == nil
	c.mu.Unlock()
	if ringing {
		c.consultEnd(reasonMissed, true)
	}
}

// mayJoin reports whether agent may join the call's media: its agent, or the agent it
// consults.
func (c *heldCall) mayJoin(agent string) bool {
	if c.answered(agent) == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseAnswered && c.consult == agent
}

// join joins agent's side to the call: as the call's agent, or as the agent it consults
// (then the call becomes a room, the caller on hold).
func (c *heldCall) join(_ context.Context, agent string, sink mediaSink) error {
	if c.answered(agent) == nil {
		return c.attach(agent, sink)
	}
	c.mu.Lock()
	ok := c.phase == phaseAnswered && c.consult == agent && c.consultSink == nil
	by := c.agent
	if ok {
		c.consultSink = sink
		if c.consultTimer != nil {
			c.consultTimer.Stop()
			c.consultTimer = nil
		}
	}
	c.mu.Unlock()
	if !ok {
		return errNotYours
	}
	if err := c.addLeg(sink, media.RoleTalk); err != nil {
		c.consultEnd(reasonMediaLost, false)
		return err
	}
	_ = c.holdCaller(true) // the room exists: addLeg made it
	c.tellTransfer(by, agent, transferConsulting, "")
	return nil
}

// legGone: an agent side's path closed (its session moved, or went away).
func (c *heldCall) legGone(sink mediaSink) {
	c.mu.Lock()
	consult := c.consultSink != nil && c.consultSink == sink
	c.mu.Unlock()
	if consult {
		c.consultEnd(reasonConsultEnded, false)
		return
	}
	if cur := c.sink.Load(); cur != nil && cur.s == sink {
		c.detach(sink)
		return
	}
	c.removeLeg(sink) // a side the call has left behind (its agent before a transfer)
}

// hangupBy: agent hung up. The consulted agent leaves the consult; the call's agent in a
// conference leaves the call to the agent it consulted; otherwise the call ends.
func (c *heldCall) hangupBy(agent string) {
	c.mu.Lock()
	consulted := c.consult == agent && c.consultSink != nil
	handOver := c.agent == agent && c.conference && c.consultSink != nil
	target := c.consult
	c.mu.Unlock()
	switch {
	case consulted:
		c.consultEnd(reasonConsultEnded, false)
	case handOver:
		c.hub.background(opTimeout, func(ctx context.Context) {
			if err := c.hub.st.CompleteConsult(ctx, c.id, agent, target); err != nil {
				c.hub.log.Warn("agents: conference not handed over", "call", c.id, "err", err)
				c.end(reasonAgentHangup, endHangup)
				return
			}
			c.consultDo(agent, consultComplete)
		})
	default:
		c.end(reasonAgentHangup, endHangup)
	}
}

// consultDo takes a warm transfer's step, asked for by the call's agent by (or, for
// consultDeclined, by the consulted agent).
func (c *heldCall) consultDo(by, action string) {
	switch action {
	case consultCancel:
		c.mu.Lock()
		mine := c.agent == by
		c.mu.Unlock()
		if mine {
			c.consultEnd(transferCanceled, true)
		}
	case consultDeclined:
		c.mu.Lock()
		ringing := c.consult == by && c.consultSink == nil
		c.mu.Unlock()
		if ringing {
			c.consultEnd(reasonDeclined, false)
		}
	case consultConference:
		c.mu.Lock()
		ok := c.agent == by && c.consultSink != nil
		target := c.consult
		if ok {
			c.conference = true
		}
		c.mu.Unlock()
		if ok {
			_ = c.holdCaller(false) // the room exists while the consulted agent is in it
			c.tellTransfer(by, target, transferConference, "")
		}
	case consultComplete:
		c.mu.Lock()
		consulted := c.consultSink
		if c.agent != by || consulted == nil {
			c.mu.Unlock()
			return
		}
		target := c.consult
		old := c.sink.Swap(&sinkRef{consulted})
		c.agent, c.agentInstance = c.consult, c.consultInstance
		c.consult, c.consultInstance, c.consultSink, c.conference = "", "", nil, false
		c.retargetWhispersLocked() // a supervisor whispering now coaches the new agent
		c.mu.Unlock()
		_ = c.holdCaller(false)
		if old != nil {
			c.removeLeg(old.s) // the call is a relay between the caller and target again
			old.s.Ended(reasonTransferred)
		}
		c.tellTransfer(by, target, transferCompleted, "")
	}
}

// consultEnd ends the call's consult: the consulted agent leaves the room (told so if tell),
// or stops ringing; the caller is back with the call's agent.
func (c *heldCall) consultEnd(reason string, tell bool) {
	c.mu.Lock()
	target, inst, sink, by := c.consult, c.consultInstance, c.consultSink, c.agent
	if target == "" {
		c.mu.Unlock()
		return
	}
	c.consult, c.consultInstance, c.consultSink, c.conference = "", "", nil, false
	if c.consultTimer != nil {
		c.consultTimer.Stop()
		c.consultTimer = nil
	}
	c.mu.Unlock()
	c.hub.background(opTimeout, func(ctx context.Context) {
		if err := c.hub.st.EndConsult(ctx, c.id, target); err != nil {
			c.hub.log.Warn("agents: consult not ended", "call", c.id, "agent", target, "err", err)
		}
	})
	if sink != nil {
		_ = c.holdCaller(false)
		c.removeLeg(sink)
		if tell {
			sink.Ended(reasonConsultEnded)
		}
	} else if tell {
		c.hub.send(inst, notice{Type: noticeEnded, Call: c.id, Agent: target, Reason: reason})
	}
	c.tellTransfer(by, target, transferCanceled, reason)
}
