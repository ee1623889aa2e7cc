package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc/agents"
)

// agentCalls places and ends the agents' calls through the carriers: placement goes through
// the carrier placer (routing, shared breakers, failover, callback liveness) with the call id
// the agent side chose and the media pointed at the instance holding the agent.
type agentCalls struct {
	st      *store.Redis
	reg     *carrier.Registry
	placer  *dispatch.Placer
	actions *dispatch.Actions
	log     *slog.Logger
}

func (a *agentCalls) Place(ctx context.Context, p agents.Placement) error {
	_, err := a.placer.Place(ctx, dispatch.PlaceCall{CallID: p.CallID, To: p.To, Agent: p.Agent, MediaURL: p.MediaURL})
	var invalid *carrier.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return fmt.Errorf("%w: %s", agents.ErrBadNumber, invalid.Message)
	case errors.Is(err, dispatch.ErrRefused), errors.Is(err, dispatch.ErrNoCarrier):
		return &agents.PlaceError{Reason: err.Error()}
	}
	return err
}

// Hangup ends a call at its carrier, through a stored job (dispatch.Actions) so that the
// hang-up survives this instance; a call no carrier has yet, or that has ended, is left alone.
func (a *agentCalls) Hangup(ctx context.Context, callID string) error {
	c, err := a.st.Call(ctx, callID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // never placed (or long gone): nothing to end at a carrier
	}
	if err != nil {
		return err
	}
	if c.Carrier == "" || c.CarrierCallID == "" || c.State.Terminal() {
		return nil
	}
	return a.actions.Hangup(ctx, c, "agent")
}

// Release lets go of an inbound call nobody could take. A Twilio call hears the apology that
// follows <Connect> in its TwiML once its stream closes; a Telnyx call is let go by a stored
// job (declined if never answered, hung up if it was).
func (a *agentCalls) Release(ctx context.Context, callID string) error {
	c, err := a.st.Call(ctx, callID)
	if err != nil {
		return err
	}
	if cfg, ok := a.reg.Get(c.Carrier); ok && cfg.Kind == carrier.Telnyx && !c.State.Terminal() {
		return a.actions.Reject(ctx, c, "queue")
	}
	return nil
}
