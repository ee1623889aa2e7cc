package dispatch

import (
	"context"
	"errors"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
)

// HangupOrphan stores the job that hangs up carrierCallID on carrier, a call that an attempt
// of callID we had given up on created (the store answered call.Orphaned to one of its
// callbacks). The webhooks call it before they acknowledge the callback: once it returns nil
// the hang-up survives this instance. Every later callback of the orphan finds the job and
// stores nothing.
func (a *Actions) HangupOrphan(ctx context.Context, callID, carrier, carrierCallID string) error {
	if carrierCallID == "" {
		return nil
	}
	_, err := a.EnqueueJob(ctx, OrphanJob(callID, carrier, carrierCallID, "callback"))
	return err
}

// hangupOrphan ends the carrier call the job names. It never looks at the record's carrier
// call id, which is the live call's, except to refuse it: a job that names the live call (a
// carrier that created the orphan and then carried the call on a later attempt under the
// same id cannot happen, but a bug could) is given up rather than end the call in progress.
// The record's state does not matter: the orphan rings on whether the live call ended or not.
func (a *Actions) hangupOrphan(ctx context.Context, c store.Claimed) error {
	if c.Carrier == "" || c.CarrierCallID == "" {
		return giveUp("orphan job without carrier or carrier call id")
	}
	cl, err := a.d.Store.Call(ctx, c.CallID)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	case err == nil && cl.Carrier == c.Carrier && cl.CarrierCallID == c.CarrierCallID:
		return giveUp("carrier call %s is the live call, not an orphan", c.CarrierCallID)
	}
	client, ok := a.d.Registry.Client(c.Carrier)
	if !ok {
		return giveUp("carrier %q is not configured", c.Carrier)
	}
	res := client.Hangup(ctx, c.CarrierCallID)
	if res.Code == carrier.TelnyxCallEnded {
		return nil // the orphan ended first: nothing left to hang up
	}
	return outcomeErr(res)
}

// countOrphan counts an orphan's hang-up in switchboard_orphan_hangups_total once its job is
// over: done (hung-up) or given up (failed). Retries and lost leases are not outcomes.
func (a *Actions) countOrphan(c store.Claimed, result string) {
	switch result {
	case "done":
		a.d.Log.Info("orphan call hung up", "carrier", c.Carrier, "carrier_call_id", c.CarrierCallID, "via", c.By, "call", c.CallID)
		a.d.Metrics.orphans.WithLabelValues(c.Carrier, c.By, "hung-up").Inc()
	case "failed":
		a.d.Metrics.orphans.WithLabelValues(c.Carrier, c.By, "failed").Inc()
	}
}
