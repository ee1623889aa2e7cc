package transfer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Options are the desk's settings, the hub's (agents.HubOptions).
type Options struct {
	Store *agentdb.Store
	// RingTimeout is how long a transfer's or a consult's target rings; OfferTTL bounds how
	// long a number leg's offer is remembered.
	RingTimeout time.Duration
	OfferTTL    time.Duration
	Log         *slog.Logger
	// Send delivers n to instance (maybe this one), asynchronously (the hub's notices).
	Send func(instance string, n held.Notice)
}

// Desk takes the transfer requests of one instance's agents and of the admin API.
type Desk struct{ opts Options }

// New returns the transfer desk of opts.
func New(opts Options) *Desk { return &Desk{opts: opts} }

// Error is a transfer refused for a reason the agent can act on; Code is one of the signal
// package's codes (signal.CodeTargetBusy, ...), which the softphone and the API show.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func refused(code, message string) error { return &Error{Code: code, Message: message} }

// agentTarget is the prefix of a transfer target that names an agent.
const agentTarget = "agent:"

// Transfer hands call callID to the target to ("agent:<id>", or an E.164 number, blind only:
// held/number.go), in mode "blind" (the transferring agent's session ends the call with reason
// "transferred" and wraps up) or "warm" (a consult begins: held/consult.go). by is the agent
// asking, which must have the call; empty, an admin asks on behalf of whoever has it.
// Refusals are *Error.
func (d *Desk) Transfer(ctx context.Context, callID, by, to, mode string) error {
	switch mode {
	case signal.TransferBlind, signal.TransferWarm:
	default:
		return refused(signal.CodeBadRequest, `mode must be "blind" or "warm"`)
	}
	target, ok := strings.CutPrefix(to, agentTarget)
	switch {
	case !ok && signal.ValidNumber(to) && mode == signal.TransferWarm:
		return refused(signal.CodeNotImplemented, "a warm transfer to a phone number is not available; transfer it blind")
	case !ok && signal.ValidNumber(to):
	case !ok:
		return refused(signal.CodeBadRequest, `transfer to "agent:<id>" or an E.164 number such as +15551234567`)
	case !agentdb.ValidAgentID(target):
		return refused(signal.CodeUnknownAgent, "no such agent")
	}
	o, err := d.opts.Store.Offer(ctx, callID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refused(signal.CodeNoCall, "no such call with an agent")
	case err != nil:
		return err
	case o.State != agentdb.OfferAnswered || by != "" && o.Agent != by:
		return refused(signal.CodeNoCall, "the call is not connected to you")
	}
	if !ok {
		return d.toNumber(ctx, o, to)
	}
	if mode == signal.TransferWarm {
		return d.consultStart(ctx, o, target)
	}
	from := o.Agent
	if _, err := d.opts.Store.TransferOffer(ctx, callID, from, target, d.opts.RingTimeout); err != nil {
		return fromStore(err)
	}
	d.opts.Log.Info("agents: call transferred", "call", callID, "from", from, "to", target)
	// The holder rings the target; the transferring agent's session lets go (the holder tells
	// it too, through its media path; this is the way that does not need one).
	d.opts.Send(o.Holder, held.Notice{Type: held.NoticeTransfer, Call: callID, Agent: target, By: from})
	if p, err := d.opts.Store.Presence(ctx, from); err == nil && p.Instance != "" {
		d.opts.Send(p.Instance, held.Notice{Type: held.NoticeEnded, Call: callID, Agent: from, Reason: held.ReasonTransferred})
	}
	return nil
}

// fromStore turns the store's refusal of a transfer into an *Error.
func fromStore(err error) error {
	switch {
	case errors.Is(err, agentdb.ErrUnknownAgent):
		return refused(signal.CodeUnknownAgent, "no such agent")
	case errors.Is(err, agentdb.ErrSameAgent):
		return refused(signal.CodeBadRequest, "the call is that agent's already")
	case errors.Is(err, agentdb.ErrAgentOffline):
		return refused(signal.CodeTargetOffline, "that agent is not signed in")
	case errors.Is(err, agentdb.ErrAgentBusy):
		return refused(signal.CodeTargetBusy, "that agent is on a call")
	case errors.Is(err, agentdb.ErrAgentRinging):
		return refused(signal.CodeTargetBusy, "another call is ringing for that agent")
	case errors.Is(err, agentdb.ErrAgentAway):
		return refused(signal.CodeTargetUnavailable, "that agent is away or wrapping up")
	case errors.Is(err, agentdb.ErrOfferGone):
		return refused(signal.CodeNoCall, "the call is not connected to you")
	}
	return err
}

// consultStart rings target to consult about the call of offer o, answered by o.Agent.
func (d *Desk) consultStart(ctx context.Context, o agentdb.Offer, target string) error {
	ro, err := d.opts.Store.ConsultOffer(ctx, o.Call, o.Agent, target, d.opts.RingTimeout)
	if errors.Is(err, agentdb.ErrConsulting) {
		return refused(signal.CodeBusy, "a consult is going already: complete or cancel it first")
	}
	if err != nil {
		return fromStore(err)
	}
	d.opts.Send(o.Holder, held.Notice{Type: held.NoticeConsult, Call: o.Call, Agent: target, By: o.Agent, Instance: ro.ConsultInstance})
	return nil
}

// ConsultAction takes a warm transfer's next step (complete, cancel or conference) for the
// agent by who consults (empty: an admin, for whoever has the call). Refusals are
// *TransferError.
func (d *Desk) ConsultAction(ctx context.Context, callID, by, action string) error {
	o, err := d.opts.Store.Offer(ctx, callID)
	switch {
	case err != nil:
		return refused(signal.CodeNoCall, "no such call with an agent")
	case o.State != agentdb.OfferAnswered || by != "" && o.Agent != by:
		return refused(signal.CodeNoCall, "the call is not connected to you")
	case o.Consult == "":
		return refused(signal.CodeNoCall, "no transfer is going on for the call")
	}
	if action != held.ConsultCancel {
		// Completing or conferencing needs the consulted agent on the line.
		p, err := d.opts.Store.Presence(ctx, o.Consult)
		if err != nil {
			return err
		}
		if p.State != agentdb.Busy || p.Call != callID {
			return refused(signal.CodeRinging, "the agent has not answered yet: wait, or cancel")
		}
	}
	if action == held.ConsultComplete {
		if err := d.opts.Store.CompleteConsult(ctx, callID, o.Agent, o.Consult); err != nil {
			return fromStore(err)
		}
		if _, err := d.opts.Store.Apply(ctx, call.Event{ID: callID + ":agent:" + o.Consult + ":transfer", CallID: callID,
			Detail: "transferred by agent " + o.Agent + " to agent " + o.Consult, Source: call.SourceSwitchboard}); err != nil {
			d.opts.Log.Warn("agents: transfer not recorded", "call", callID, "err", err)
		}
	}
	d.opts.Send(o.Holder, held.Notice{Type: held.NoticeConsultDo, Call: callID, By: o.Agent, State: action})
	return nil
}

// toNumber hands the call of offer o, answered by o.Agent, to number.
func (d *Desk) toNumber(ctx context.Context, o agentdb.Offer, number string) error {
	from, leg := o.Agent, store.NewCallID()
	if _, err := d.opts.Store.TransferToNumber(ctx, o.Call, from, leg, number, d.opts.OfferTTL); err != nil {
		if errors.Is(err, agentdb.ErrConsulting) {
			return refused(signal.CodeBusy, "a consult is going: complete or cancel it first")
		}
		return fromStore(err)
	}
	if _, err := d.opts.Store.Apply(ctx, call.Event{ID: o.Call + ":transfer:" + leg, CallID: o.Call,
		Detail: "transferred by agent " + from + " to " + number + " (call " + leg + ")", Source: call.SourceSwitchboard}); err != nil {
		d.opts.Log.Warn("agents: transfer not recorded", "call", o.Call, "err", err)
	}
	d.opts.Log.Info("agents: call transferred to a number", "call", o.Call, "from", from, "leg", leg)
	d.opts.Send(o.Holder, held.Notice{Type: held.NoticeToNumber, Call: o.Call, By: from, To: number, Leg: leg})
	if p, err := d.opts.Store.Presence(ctx, from); err == nil && p.Instance != "" {
		d.opts.Send(p.Instance, held.Notice{Type: held.NoticeEnded, Call: o.Call, Agent: from, Reason: held.ReasonTransferred})
	}
	return nil
}
