package agents

import (
	"context"
	"errors"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agents/transfer"
)

// Transfers as the agents' side takes them: the Hub's API (package transfer's desk), the
// softphone's commands, and the notices that reach the holder of a transferred call.

// TransferError is a transfer refused for a reason the agent can act on; Code is one of the
// signal package's codes (signal.CodeTargetBusy, ...), which the softphone and the API show.
type TransferError = transfer.Error

// Transfer hands call callID to the target to ("agent:<id>", or an E.164 number, blind only:
// held/number.go), in mode "blind" (the transferring agent's session ends the call with reason
// "transferred" and wraps up) or "warm" (a consult begins: held/consult.go). by is the agent
// asking, which must have the call; empty, an admin asks on behalf of whoever has it.
// Refusals are *TransferError.
func (h *Hub) Transfer(ctx context.Context, callID, by, to, mode string) error {
	return h.transfers.Transfer(ctx, callID, by, to, mode)
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

// ConsultAction takes a warm transfer's next step (complete, cancel or conference) for the
// agent by who consults (empty: an admin, for whoever has the call). Refusals are
// *TransferError.
func (h *Hub) ConsultAction(ctx context.Context, callID, by, action string) error {
	return h.transfers.ConsultAction(ctx, callID, by, action)
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
