package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
)

// Orphans are calls that a carrier created for an attempt we gave up on: its answer came too
// late (or never), the call went to the next carrier, and the callee must not be rung twice.
// An orphan is found three ways: its first callback names the abandoned attempt (the store
// says call.Orphaned and the webhooks call Actions.HangupOrphan before they acknowledge it),
// an early callback had put its id in the record before we gave up (AbandonAttempt hands it
// back), and, for Twilio, a lookup of the account's live calls to the callee shortly after the
// failover.
//
// However it is found, its hang-up is a job (store.JobHangupOrphan) that names the orphan's
// carrier and carrier call id, deduplicated by them, and run by any instance like every other
// carrier action: it survives the instance that found the orphan. The lookup itself runs in
// the instance that failed over, bounded: it only finds work, and losing it with its instance
// leaves the orphan to its own callbacks, which find it as well.
type orphans struct {
	st  placerStore
	log *slog.Logger

	work background // lookups, cancelled when the Placer stops
}

// Bounds of the lookup.
const (
	orphanLookupBudget = 10 * time.Second // the whole lookup after a failover
	orphanLookupFirst  = 1 * time.Second  // the carrier's call list lags behind its calls
	orphanLookupSecond = 4 * time.Second  // ... so look twice
)

func newOrphans(st placerStore, log *slog.Logger) *orphans {
	return &orphans{st: st, log: log}
}

// OrphanJob is the job that hangs up carrierCallID on carrier, an orphan of call callID found
// via callback, early or lookup.
func OrphanJob(callID, carrier, carrierCallID, via string) store.Job {
	return store.Job{ID: store.OrphanJobID(carrier, carrierCallID), Kind: store.JobHangupOrphan, CallID: callID,
		Carrier: carrier, CarrierCallID: carrierCallID, By: via}
}

// hangup stores the orphan's hang-up job; false if it could not be stored (logged).
func (o *orphans) hangup(ctx context.Context, callID, carrier, carrierCallID, via string) bool {
	if _, err := o.st.EnqueueJob(ctx, OrphanJob(callID, carrier, carrierCallID, via)); err != nil {
		o.log.Warn("orphan's hang-up not stored", "call", callID, "carrier", carrier, "carrier_call_id", carrierCallID,
			"via", via, "err", err)
		return false
	}
	return true
}

// stop cancels the lookups running and waits for them.
func (o *orphans) stop() { o.work.stop() }

// callLister is a client that can list an account's live calls to a number (Twilio).
type callLister interface {
	LiveCallsTo(ctx context.Context, to, from string, since time.Time) ([]string, carrier.Result)
}

// hunt looks for the call a maybe-created request for callID left on carrier id, twice shortly
// after the failover, and stores the hang-up of whatever live call to the callee from our
// number, created since the request was sent, is not a call we know. Twilio callbacks of the
// orphan usually find it sooner; this is for a carrier whose callbacks do not reach us.
func (o *orphans) hunt(callID, id string, lister callLister, to, from string, since time.Time) {
	failover := time.Now()
	o.work.Go(orphanLookupBudget, func(ctx context.Context) {
		for _, at := range []time.Duration{orphanLookupFirst, orphanLookupSecond} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(failover.Add(at))):
			}
			sids, r := lister.LiveCallsTo(ctx, to, from, since)
			if r.Outcome != carrier.Accepted {
				o.log.Info("orphan lookup failed", "carrier", id, "result", r.String())
				continue
			}
			for _, sid := range sids {
				_, err := o.st.CallByCarrierID(ctx, sid, "")
				switch {
				case errors.Is(err, store.ErrNotFound):
					o.hangup(ctx, callID, id, sid, "lookup")
				case err != nil:
					o.log.Info("orphan lookup: call not checked", "carrier", id, "carrier_call_id", sid, "err", err)
				}
			}
		}
	})
}
