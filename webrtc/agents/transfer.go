package agents

import (
	"context"
	"errors"
	"strings"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Blind transfer: an agent hands its call to another agent, on any instance. The target is
// reserved and rung as the queue would ring it (store/agentdb's TransferOffer); the
// transferring agent is released at once and wraps up; the caller hears the hold tone while
// the target rings. A target that lets it ring out or declines it gives the call back to the
// transferring agent, rung again (a ring-back), or, when that agent cannot take it (offline,
// on another call), to the queue.

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
		h.send(p.Instance, notice{Type: noticeEnded, Call: callID, Agent: from, Reason: held.ReasonTransferred})
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
			s.callEnded(ctx, c.id, held.ReasonTransferred)
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
	c.Transferred(n.By, o)
}

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
	if action != held.ConsultCancel {
		// Completing or conferencing needs the consulted agent on the line.
		p, err := h.st.Presence(ctx, o.Consult)
		if err != nil {
			return err
		}
		if p.State != agentdb.Busy || p.Call != callID {
			return transferRefused(signal.CodeRinging, "the agent has not answered yet: wait, or cancel")
		}
	}
	if action == held.ConsultComplete {
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
	action := map[string]string{signal.TypeTransferComplete: held.ConsultComplete, signal.TypeTransferCancel: held.ConsultCancel,
		signal.TypeTransferConference: held.ConsultConference}[m.Type]
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
		case action == held.ConsultComplete:
			s.callEnded(ctx, c.id, held.ReasonTransferred)
		}
	})
}

// transferToNumber hands the call of offer o, answered by o.Agent, to number.
func (h *Hub) transferToNumber(ctx context.Context, o agentdb.Offer, number string) error {
	from, leg := o.Agent, store.NewCallID()
	if _, err := h.st.TransferToNumber(ctx, o.Call, from, leg, number, offerTTL); err != nil {
		if errors.Is(err, agentdb.ErrConsulting) {
			return transferRefused(signal.CodeBusy, "a consult is going: complete or cancel it first")
		}
		return transferError(err)
	}
	if _, err := h.st.Apply(ctx, call.Event{ID: o.Call + ":transfer:" + leg, CallID: o.Call,
		Detail: "transferred by agent " + from + " to " + number + " (call " + leg + ")", Source: call.SourceSwitchboard}); err != nil {
		h.log.Warn("agents: transfer not recorded", "call", o.Call, "err", err)
	}
	h.log.Info("agents: call transferred to a number", "call", o.Call, "from", from, "leg", leg)
	h.send(o.Holder, notice{Type: noticeToNumber, Call: o.Call, By: from, To: number, Leg: leg})
	if p, err := h.st.Presence(ctx, from); err == nil && p.Instance != "" {
		h.send(p.Instance, notice{Type: noticeEnded, Call: o.Call, Agent: from, Reason: held.ReasonTransferred})
	}
	return nil
}

// transferNumberNotice: the call held here was transferred to a number (noticeToNumber).
func (h *Hub) transferNumberNotice(ctx context.Context, n notice) {
	c, err := h.holderFor(ctx, n.Call)
	if err != nil {
		h.log.Warn("agents: a call transferred to a number is not held here", "call", n.Call, "err", err)
		held.EndLegOffer(ctx, &h.heldOpts, n.Leg)
		return
	}
	c.NumberTransferred(n.By, n.To, n.Leg)
}
