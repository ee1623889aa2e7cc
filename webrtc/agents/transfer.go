package agents

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Blind transfer: an agent hands its call to another agent, on any instance. The target is
// reserved and rung as the queue would ring it (store/agentdb's TransferOffer); the
// transferring agent is released at once and wraps up; the caller hears the hold tone while
// the target rings. A target that lets it ring out or declines it gives the call back to the
// transferring agent, rung again (a ring-back), or, when that agent cannot take it (offline,
// on another call), to the queue.

// reasonTransferred ends the call for the agent who transferred it.
const reasonTransferred = "transferred"

// TransferError is a transfer refused for a reason the agent can act on; Code is one of the
// signal package's codes (signal.CodeTargetBusy, ...), which the softphone and the API show.
type TransferError struct {
	Code    string
	Message string
}

func (e *TransferError) Error() string { return e.Message }

func transferRefused(code, message string) error { return &TransferError{Code: code, Message: message} }

// agentTarget is the prefix of a transfer target that names an agent.
const agentTarget = "agent:"

// Transfer hands call callID to the target to ("agent:<id>", or an E.164 number, blind only:
// transfer_number.go), in mode "blind" (the transferring agent's session ends the call with reason
// "transferred" and wraps up) or "warm" (a consult begins: consult.go). by is the agent
// asking, which must have the call; empty, an admin asks on behalf of whoever has it.
// Refusals are *TransferError.
func (h *Hub) Transfer(ctx context.Context, callID, by, to, mode string) error {
	switch mode {
	case signal.TransferBlind, signal.TransferWarm:
	default:
		return transferRefused(signal.CodeBadRequest, `mode must be "blind" or "warm"`)
	}
	target, ok := strings.CutPrefix(to, agentTarget)
	switch {
	case !ok && signal.ValidNumber(to) && mode == signal.TransferWarm:
		return transferRefused(signal.CodeNotImplemented, "a warm transfer to a phone number is not available; transfer it blind")
	case !ok && signal.ValidNumber(to):
	case !ok:
		return transferRefused(signal.CodeBadRequest, `transfer to "agent:<id>" or an E.164 number such as +15551234567`)
	case !agentdb.ValidAgentID(target):
		return transferRefused(signal.CodeUnknownAgent, "no such agent")
	}
	o, err := h.st.Offer(ctx, callID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return transferRefused(signal.CodeNoCall, "no such call with an agent")
	case err != nil:
		return err
	case o.State != agentdb.OfferAnswered || by != "" && o.Agent != by:
		return transferRefused(signal.CodeNoCall, "the call is not connected to you")
	}
	if !ok {
		return h.transferToNumber(ctx, o, to)
	}
	if mode == signal.TransferWarm {
		return h.consultStart(ctx, o, target)
	}
	from := o.Agent
	if _, err := h.st.TransferOffer(ctx, callID, from, target, h.opts.RingTimeout); err != nil {
		return transferError(err)
	}
	h.log.Info("agents: call transferred", "call", callID, "from", from, "to", target)
	// The holder rings the target; the transferring agent's session lets go (the holder tells
	// it too, through its media path; this is the way that does not need one).
	h.send(o.Holder, notice{Type: noticeTransfer, Call: callID, Agent: target, By: from})
	if p, err := h.st.Presence(ctx, from); err == nil && p.Instance != "" {
		h.send(p.Instance, notice{Type: noticeEnded, Call: callID, Agent: from, Reason: reasonTransferred})
	}
	return nil
}

func transferError(err error) error {
	switch {
	case errors.Is(err, agentdb.ErrUnknownAgent):
		return transferRefused(signal.CodeUnknownAgent, "no such agent")
	case errors.Is(err, agentdb.ErrSameAgent):
		return transferRefused(signal.CodeBadRequest, "the call is that agent's already")
	case errors.Is(err, agentdb.ErrAgentOffline):
		return transferRefused(signal.CodeTargetOffline, "that agent is not signed in")
	case errors.Is(err, agentdb.ErrAgentBusy):
		return transferRefused(signal.CodeTargetBusy, "that agent is on a call")
	case errors.Is(err, agentdb.ErrAgentRinging):
		return transferRefused(signal.CodeTargetBusy, "another call is ringing for that agent")
	case errors.Is(err, agentdb.ErrAgentAway):
		return transferRefused(signal.CodeTargetUnavailable, "that agent is away or wrapping up")
	case errors.Is(err, agentdb.ErrOfferGone):
		return transferRefused(signal.CodeNoCall, "the call is not connected to you")
	}
	return err
}

// transferCommand is the softphone's transfer message.
func (s *session) transferCommand(m signal.ClientMessage) {
	s.mu.Lock()
	c := s.call
	s.mu.Unlock()
	if c == nil || (m.CallID != "" && c.id != m.CallID) {
		s.sendError(signal.CodeNoCall, "not on that call", m.CallID)
		return
	}
	s.hub.background(opTimeout, func(ctx context.Context) {
		err := s.hub.Transfer(ctx, c.id, s.agent.ID, m.To, m.Mode)
		var te *TransferError
		switch {
		case errors.As(err, &te):
			s.sendError(te.Code, te.Message, c.id)
		case err != nil:
			s.refused(signal.CodeUnavailable, "the call could not be transferred; try again", c.id, err)
		case m.Mode == signal.TransferBlind:
			s.callEnded(ctx, c.id, reasonTransferred)
		}
	})
}

// transferNotice: the call held here was transferred (noticeTransfer). Its offer in Redis
// says whom it rings now.
func (h *Hub) transferNotice(ctx context.Context, n notice) {
	c := h.held(n.Call)
	if c == nil {
		return
	}
	o, err := h.st.Offer(ctx, n.Call)
	if err != nil || o.State != agentdb.OfferRinging || o.Agent != n.Agent {
		return // answered or ended meanwhile
	}
	c.transferred(n.By, o)
}

// transferred: the call's agent from handed it to the agent offer o rings. from's side lets
// go, the caller hears the hold tone while o.Agent rings, and the call waits for an agent
// again for up to the queue timeout from now.
func (c *heldCall) transferred(from string, o agentdb.Offer) {
	c.mu.Lock()
	if c.phase != phaseAnswered || c.agent != from {
		c.mu.Unlock()
		return
	}
	old := c.sink.Swap(nil)
	others := c.closeRoomLocked(old)
	if c.lostTimer != nil {
		c.lostTimer.Stop()
		c.lostTimer = nil
	}
	c.transferFrom = from
	c.phase, c.agent, c.agentInstance = phaseRinging, o.Agent, o.AgentInstance
	c.queueDeadline = time.Now().Add(c.hub.opts.QueueTimeout)
	if c.queueTimer != nil {
		c.queueTimer.Stop()
	}
	c.queueTimer = c.hub.after(c.hub.opts.QueueTimeout, c.queueTimedOut)
	c.startToneLocked()
	c.mu.Unlock()
	if old != nil {
		old.s.Ended(reasonTransferred)
	}
	for _, s := range others {
		s.Ended(reasonTransferred)
	}
	c.ringFor(o)
}

// ringBack rings agent, who transferred the call, for it again; false if it cannot take it.
func (c *heldCall) ringBack(agent string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	o, err := c.hub.st.RingBack(ctx, c.id, agent, c.hub.opts.RingTimeout)
	if err != nil {
		c.hub.log.Info("agents: a transferred call nobody took goes to the queue", "call", c.id, "agent", agent, "err", err)
		return false
	}
	c.ringFor(o)
	return true
}
