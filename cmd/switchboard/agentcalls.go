package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webhooks"
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
	// streams builds the media stream URLs a re-point sends: the webhooks server, set by
	// newWebhooks before anything runs.
	streams streamURLs
	// repointBackoff is the first pause between the attempts of a re-point or of a release
	// (doubling); 0 means 250 ms.
	repointBackoff time.Duration
}

// streamURLs is what a re-point needs of the webhooks server.
type streamURLs interface {
	TwilioStreamURLAt(base, carrier, callID string) string
	TelnyxStreamURLAt(base, carrier, callID string) string
}

// repointBudget bounds a re-point, retries included: past it the call is left to the
// reconciler, which learns from the carrier whether it is still up. A Twilio call waits
// webhooks.StreamGrace for its re-point, so this leaves room for a second claimant.
const repointBudget = 5 * time.Second

// releaseBudget bounds the sending of the apology to a released Twilio caller, retries
// included; past it the caller hears it after the stream's grace pause instead.
const releaseBudget = 2 * time.Second

// errRepointRefused says a call's media could not be re-pointed: the carrier says the call is
// over, refused the request, or did not answer in time. The call's reconciliation has been
// brought forward.
var errRepointRefused = errors.New("re-point refused")

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

// Release lets go of an inbound call nobody could take. A Twilio call is sent the apology
// (webhooks.Apology) as its new TwiML; if that fails, the call hears the same apology after
// its stream closes and the grace pause (webhooks.StreamGrace) runs out. A Telnyx call is let
// go by a stored job (declined if never answered, hung up if it was).
func (a *agentCalls) Release(ctx context.Context, callID string) error {
	c, err := a.st.Call(ctx, callID)
	if err != nil {
		return err
	}
	cfg, ok := a.reg.Get(c.Carrier)
	if !ok || c.State.Terminal() {
		return nil
	}
	switch cfg.Kind {
	case carrier.Telnyx:
		return a.actions.Reject(ctx, c, "queue")
	case carrier.Twilio:
		tw, err := a.twilio(c.Carrier)
		if err != nil {
			return err
		}
		r, _ := a.retry(ctx, releaseBudget, func(ctx context.Context) carrier.Result {
			return tw.Redirect(ctx, c.CarrierCallID, webhooks.Apology)
		})
		if r.Outcome != carrier.Accepted && !r.Gone() {
			a.log.Info("apology not sent to the queued caller; it follows the stream's grace pause",
				"call", callID, "carrier", c.Carrier, "result", r.String())
		}
	}
	return nil
}

// Repoint points a live call's carrier media at the instance whose public base URL is
// mediaURL: a Twilio call gets new TwiML (the same stream TwiML as its voice answer, to that
// instance), a Telnyx call a new stream (streaming_start). Transient failures are retried
// within repointBudget. A call the carrier says is over, a refusal, or no success in time
// brings the call's reconciliation forward (so its record gets the carrier's real outcome)
// and returns an error wrapping errRepointRefused. nil means the carrier took the re-point.
func (a *agentCalls) Repoint(ctx context.Context, callID, mediaURL string) error {
	c, err := a.st.Call(ctx, callID)
	if err != nil {
		return err
	}
	if c.State.Terminal() {
		return fmt.Errorf("%w: call %s is %s", errRepointRefused, callID, c.State)
	}
	cfg, ok := a.reg.Get(c.Carrier)
	if !ok || c.CarrierCallID == "" {
		return a.refused(ctx, callID, fmt.Sprintf("carrier %q not configured or no carrier call id", c.Carrier))
	}
	var send func(context.Context) carrier.Result
	switch cfg.Kind {
	case carrier.Twilio:
		tw, err := a.twilio(c.Carrier)
		if err != nil {
			return a.refused(ctx, callID, err.Error())
		}
		doc := webhooks.TwilioStreamTwiML(a.streams.TwilioStreamURLAt(mediaURL, c.Carrier, callID), callID, c.Direction == call.Inbound)
		send = func(ctx context.Context) carrier.Result { return tw.Redirect(ctx, c.CarrierCallID, doc) }
	case carrier.Telnyx:
		client, _ := a.reg.Client(c.Carrier)
		tx, ok := client.(*carrier.TelnyxClient)
		if !ok {
			return a.refused(ctx, callID, "carrier "+c.Carrier+" has no Telnyx client")
		}
		stream := a.streams.TelnyxStreamURLAt(mediaURL, c.Carrier, callID)
		send = func(ctx context.Context) carrier.Result { return tx.StartStream(ctx, c.CarrierCallID, stream) }
	default:
		return a.refused(ctx, callID, "carrier kind "+cfg.Kind.String()+" cannot re-point")
	}

	r, attempts := a.retry(ctx, repointBudget, send)
	switch {
	case r.Outcome == carrier.Accepted:
		a.log.Info("call re-pointed", "call", callID, "carrier", c.Carrier, "media", mediaURL, "attempts", attempts)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case r.Retryable && !r.Gone():
		return a.refused(ctx, callID, "no success within "+repointBudget.String()+": "+r.String())
	}
	return a.refused(ctx, callID, r.String())
}

// retry sends a request to a carrier until it is accepted, answered with something a resend
// cannot change (not Retryable, or Gone), or budget has passed, pausing between attempts
// (a.repointBackoff, doubling). It returns the last answer and how many requests were sent.
func (a *agentCalls) retry(ctx context.Context, budget time.Duration, send func(context.Context) carrier.Result) (carrier.Result, int) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	wait := a.repointBackoff
	if wait <= 0 {
		wait = 250 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		r := send(ctx)
		if r.Outcome == carrier.Accepted || r.Gone() || !r.Retryable {
			return r, attempt
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			wait *= 2
		case <-ctx.Done():
			t.Stop()
			return r, attempt
		}
	}
}

// refused brings the reconciliation of a call that could not be re-pointed forward and
// returns the error that says so.
func (a *agentCalls) refused(ctx context.Context, callID, why string) error {
	a.log.Warn("call's media not re-pointed; reconciling it", "call", callID, "reason", why)
	if err := a.st.ExpediteReconcile(context.WithoutCancel(ctx), time.Now(), callID); err != nil {
		a.log.Warn("reconciliation of a call not re-pointed not brought forward; it comes in its time", "call", callID, "err", err)
	}
	return fmt.Errorf("%w: call %s: %s", errRepointRefused, callID, why)
}

func (a *agentCalls) twilio(carrierID string) (*carrier.TwilioClient, error) {
	client, _ := a.reg.Client(carrierID)
	tw, ok := client.(*carrier.TwilioClient)
	if !ok {
		return nil, fmt.Errorf("carrier %q has no Twilio client", carrierID)
	}
	return tw, nil
}
