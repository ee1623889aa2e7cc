package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webhooks"
	"github.com/switchboard/switchboard/webrtc"
)

// agentCalls places and ends the agents' calls through the configured carriers: enabled
// carriers in priority order, the next one when a carrier fails us, none after a final answer.
//
// It is the minimal placement the agent side needs until the carrier router with breakers and
// callback liveness (carrier.Placer) is wired in; that placer must then accept the call id the
// agent side chose (the call's offer, which says where its media goes, exists before the call
// is placed) and build Telnyx stream URLs with webhooks.Server.TelnyxStreamURLAt on the
// instance Hub.MediaBase names.
type agentCalls struct {
	st     *store.Redis
	reg    *carrier.Registry
	hooks  *webhooks.Server // set once the webhooks server exists
	public string
	log    *slog.Logger
}

func (a *agentCalls) Place(ctx context.Context, p webrtc.Placement) error {
	if _, err := a.st.Apply(ctx, call.Event{ID: p.CallID + ":placed", CallID: p.CallID, State: call.Queued,
		Direction: call.Outbound, To: p.To, Agent: p.Agent}); err != nil {
		return err
	}
	var tried []string
	for i, cfg := range a.enabled() {
		client, ok := a.reg.Client(cfg.ID)
		if !ok {
			continue
		}
		req := carrier.PlaceRequest{CallID: p.CallID, Attempt: i + 1, To: p.To,
			VoiceURL:  a.public + "/webhooks/" + cfg.ID + "/voice?sb_call=" + p.CallID,
			StatusURL: a.public + "/webhooks/" + cfg.ID + "/status?sb_call=" + p.CallID}
		if cfg.Kind == carrier.Telnyx {
			req.StatusURL = a.public + "/webhooks/" + cfg.ID + "/events"
			req.StreamURL = a.hooks.TelnyxStreamURLAt(p.MediaURL, cfg.ID, p.CallID)
		}
		placed, res := client.Place(ctx, req)
		attempt := call.Event{ID: p.CallID + ":attempt:" + strconv.Itoa(i+1), CallID: p.CallID, Carrier: cfg.ID,
			Detail: cfg.ID + ": " + res.Reason}
		switch res.Outcome {
		case carrier.Accepted:
			attempt.From = cfg.From
			if _, err := a.st.Apply(ctx, attempt); err != nil {
				a.log.Warn("attempt not recorded", "call", p.CallID, "err", err)
			}
			return a.st.Link(ctx, p.CallID, cfg.ID, placed.CarrierCallID)
		case carrier.Final:
			a.st.Apply(ctx, attempt)
			a.fail(ctx, p.CallID, res.Reason)
			return &webrtc.PlaceError{Reason: res.Reason}
		default:
			a.log.Warn("carrier failed to place a call; trying the next", "carrier", cfg.ID, "call", p.CallID, "result", res.String())
			a.st.Apply(ctx, attempt)
			tried = append(tried, cfg.ID+": "+res.Reason)
		}
	}
	reason := "no carrier is configured"
	if len(tried) > 0 {
		reason = fmt.Sprintf("no carrier took the call (%d tried)", len(tried))
	}
	a.fail(ctx, p.CallID, reason)
	return &webrtc.PlaceError{Reason: reason}
}

func (a *agentCalls) enabled() []carrier.Config {
	var out []carrier.Config
	for _, c := range a.reg.All() { // by priority, then id
		if c.Enabled {
			out = append(out, c)
		}
	}
	return out
}

func (a *agentCalls) fail(ctx context.Context, callID, reason string) {
	if _, err := a.st.Apply(ctx, call.Event{ID: callID + ":failed", CallID: callID, State: call.Failed, Detail: reason}); err != nil {
		a.log.Warn("failed call not recorded", "call", callID, "err", err)
	}
}

// Hangup ends a call at its carrier; a call no carrier has yet is left alone.
func (a *agentCalls) Hangup(ctx context.Context, callID string) error {
	c, err := a.st.Call(ctx, callID)
	if err != nil || c.Carrier == "" || c.CarrierCallID == "" || c.State.Terminal() {
		return nil
	}
	client, ok := a.reg.Client(c.Carrier)
	if !ok {
		return fmt.Errorf("carrier %q is not configured", c.Carrier)
	}
	if res := client.Hangup(ctx, c.CarrierCallID); res.Outcome != carrier.Accepted {
		return errors.New(res.String())
	}
	return nil
}

// Release lets go of an inbound call nobody could take. A Twilio call hears the apology that
// follows <Connect> in its TwiML once its stream closes; a Telnyx call is hung up.
func (a *agentCalls) Release(ctx context.Context, callID string) error {
	c, err := a.st.Call(ctx, callID)
	if err != nil {
		return err
	}
	if cfg, ok := a.reg.Get(c.Carrier); ok && cfg.Kind == carrier.Telnyx {
		return a.Hangup(ctx, callID)
	}
	return nil
}

// AnswerTelnyx answers an inbound Telnyx call and points its media stream at streamURL.
func (a *agentCalls) AnswerTelnyx(ctx context.Context, carrierID, callControlID, streamURL, callID string) error {
	client, ok := a.reg.Client(carrierID)
	tx, isTelnyx := client.(*carrier.TelnyxClient)
	if !ok || !isTelnyx {
		return fmt.Errorf("carrier %q is not a Telnyx carrier", carrierID)
	}
	if res := tx.Answer(ctx, callControlID, streamURL, callID); res.Outcome != carrier.Accepted {
		return errors.New(res.String())
	}
	return nil
}
