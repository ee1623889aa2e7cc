package held

import (
	"context"

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
	ConsultComplete   = "complete"
	ConsultCancel     = "cancel"
	ConsultConference = "conference"
	ConsultDeclined   = "declined" // from the consulted agent

	TransferRinging    = "ringing"
	TransferConsulting = "consulting"
	TransferConference = "conference"
	TransferCompleted  = "completed"
	TransferCanceled   = "canceled"
)

// tellTransfer tells agent's softphone how its warm transfer to target goes.
func (c *Call) tellTransfer(agent, target, state, reason string) {
	c.host.Background(OpTimeout, func(ctx context.Context) {
		if p, err := c.opts.Store.Presence(ctx, agent); err == nil && p.Instance != "" {
			c.host.Send(p.Instance, Notice{Type: NoticeTransferState, Call: c.id, Agent: agent, By: target, State: state, Reason: reason})
		}
	})
}

// ConsultRing rings target (on instance) to consult with by, the call's agent.
func (c *Call) ConsultRing(by, target, instance string) {
	c.mu.Lock()
	if c.phase != phaseAnswered || c.agent != by || c.consult != "" {
		c.mu.Unlock()
		c.host.Background(OpTimeout, func(ctx context.Context) { _ = c.opts.Store.EndConsult(ctx, c.id, target) })
		c.tellTransfer(by, target, TransferCanceled, ReasonGone)
		return
	}
	c.consult, c.consultInstance = target, instance
	c.consultTimer = c.host.After(c.opts.RingTimeout, func() { c.consultRangOut(target) })
	c.mu.Unlock()
	c.host.Send(instance, Notice{Type: NoticeRing, Call: c.id, Agent: target, From: c.from, To: c.to, By: by,
		Holder: c.opts.Instance, HolderURL: c.opts.PublicURL})
	c.tellTransfer(by, target, TransferRinging, "")
}

// consultRangOut: the consulted agent did not answer.
func (c *Call) consultRangOut(target string) {
	c.mu.Lock()
	ringing := c.consult == target && c.consultSink == nil
	c.mu.Unlock()
	if ringing {
		c.consultEnd(ReasonMissed, true)
	}
}

// MayJoin reports whether agent may join the call's media: its agent, or the agent it
// consults.
func (c *Call) MayJoin(agent string) bool {
	if c.answered(agent) == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseAnswered && c.consult == agent
}

// Join joins agent's side to the call: as the call's agent, or as the agent it consults
// (then the call becomes a room, the caller on hold).
func (c *Call) Join(_ context.Context, agent string, sink Sink) error {
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
		return ErrNotYours
	}
	if err := c.AddLeg(sink, media.RoleTalk); err != nil {
		c.consultEnd(ReasonMediaLost, false)
		return err
	}
	_ = c.HoldCaller(true) // the room exists: addLeg made it
	c.tellTransfer(by, agent, TransferConsulting, "")
	return nil
}

// LegGone: an agent side's path closed (its session moved, or went away).
func (c *Call) LegGone(sink Sink) {
	c.mu.Lock()
	consult := c.consultSink != nil && c.consultSink == sink
	c.mu.Unlock()
	if consult {
		c.consultEnd(ReasonConsultEnded, false)
		return
	}
	if cur := c.sink.Load(); cur != nil && cur.s == sink {
		c.detach(sink)
		return
	}
	c.RemoveLeg(sink) // a side the call has left behind (its agent before a transfer)
}

// HangupBy: agent hung up. The consulted agent leaves the consult; the call's agent in a
// conference leaves the call to the agent it consulted; otherwise the call ends.
func (c *Call) HangupBy(agent string) {
	c.mu.Lock()
	consulted := c.consult == agent && c.consultSink != nil
	handOver := c.agent == agent && c.conference && c.consultSink != nil
	target := c.consult
	c.mu.Unlock()
	switch {
	case consulted:
		c.consultEnd(ReasonConsultEnded, false)
	case handOver:
		c.host.Background(OpTimeout, func(ctx context.Context) {
			if err := c.opts.Store.CompleteConsult(ctx, c.id, agent, target); err != nil {
				c.opts.Log.Warn("agents: conference not handed over", "call", c.id, "err", err)
				c.End(ReasonAgentHangup, EndHangup)
				return
			}
			c.ConsultDo(agent, ConsultComplete)
		})
	default:
		c.End(ReasonAgentHangup, EndHangup)
	}
}

// ConsultDo takes a warm transfer's step, asked for by the call's agent by (or, for
// ConsultDeclined, by the consulted agent).
func (c *Call) ConsultDo(by, action string) {
	switch action {
	case ConsultCancel:
		c.mu.Lock()
		mine := c.agent == by
		c.mu.Unlock()
		if mine {
			c.consultEnd(TransferCanceled, true)
		}
	case ConsultDeclined:
		c.mu.Lock()
		ringing := c.consult == by && c.consultSink == nil
		c.mu.Unlock()
		if ringing {
			c.consultEnd(ReasonDeclined, false)
		}
	case ConsultConference:
		c.mu.Lock()
		ok := c.agent == by && c.consultSink != nil
		target := c.consult
		if ok {
			c.conference = true
		}
		c.mu.Unlock()
		if ok {
			_ = c.HoldCaller(false) // the room exists while the consulted agent is in it
			c.tellTransfer(by, target, TransferConference, "")
		}
	case ConsultComplete:
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
		_ = c.HoldCaller(false)
		if old != nil {
			c.RemoveLeg(old.s) // the call is a relay between the caller and target again
			old.s.Ended(ReasonTransferred)
		}
		c.tellTransfer(by, target, TransferCompleted, "")
	}
}

// consultEnd ends the call's consult: the consulted agent leaves the room (told so if tell),
// or stops ringing; the caller is back with the call's agent.
func (c *Call) consultEnd(reason string, tell bool) {
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
	c.host.Background(OpTimeout, func(ctx context.Context) {
		if err := c.opts.Store.EndConsult(ctx, c.id, target); err != nil {
			c.opts.Log.Warn("agents: consult not ended", "call", c.id, "agent", target, "err", err)
		}
	})
	if sink != nil {
		_ = c.HoldCaller(false)
		c.RemoveLeg(sink)
		if tell {
			sink.Ended(ReasonConsultEnded)
		}
	} else if tell {
		c.host.Send(inst, Notice{Type: NoticeEnded, Call: c.id, Agent: target, Reason: reason})
	}
	c.tellTransfer(by, target, TransferCanceled, reason)
}
