package carrier

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/store"
)

// orphans hangs up calls that a carrier created for an attempt we gave up on: its answer came
// too late (or never), the call went to the next carrier, and the callee must not be rung
// twice. An orphan is found two ways: its first callback names the abandoned attempt (the
// store says Orphaned and the webhooks call Placer.HangupOrphan), and, for Twilio, a lookup of
// the account's live calls to the callee shortly after the failover.
//
// Hang-ups run in bounded background tasks owned by the Placer (its Run waits for them). They
// are not durable: an instance that stops in the middle loses them, and the orphan then rings
// until the callee or the carrier's own timeout ends it.
type orphans struct {
	reg     *Registry
	st      placerStore
	metrics *Metrics
	log     *slog.Logger

	mu      sync.Mutex
	closed  bool
	handled map[string]time.Time // carrier\x00carrier call id → when its hang-up started
	work    sync.WaitGroup
	closing chan struct{}
}

// Bounds of the background work.
const (
	orphanHangupBudget = 5 * time.Second        // one orphan's hang-up, retries included
	orphanMemory       = 2 * time.Minute        // an orphan's later callbacks do not hang it up again
	orphanLookupBudget = 10 * time.Second       // the whole lookup after a failover
	orphanLookupFirst  = 1 * time.Second        // the carrier's call list lags behind its calls
	orphanLookupSecond = 4 * time.Second        // ... so look twice
	hangupPause        = 200 * time.Millisecond // between tries of one hang-up
)

func newOrphans(reg *Registry, st placerStore, m *Metrics, log *slog.Logger) *orphans {
	return &orphans{reg: reg, st: st, metrics: m, log: log, handled: map[string]time.Time{}, closing: make(chan struct{})}
}

// goBounded runs f in the background with a context that ends after budget or when the
// Placer stops; false if it is stopping already.
func (o *orphans) goBounded(budget time.Duration, f func(ctx context.Context)) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.work.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		go func() {
			select {
			case <-o.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		f(ctx)
	})
	return true
}

// stop cancels the background work and waits for it.
func (o *orphans) stop() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.closing)
	}
	o.mu.Unlock()
	o.work.Wait()
}

// hangup ends carrierCallID on carrier in the background, once per orphan however many of
// its callbacks arrive. via says how it was found, for the metric and the log.
func (o *orphans) hangup(carrier, carrierCallID, via string) {
	key := carrier + "\x00" + carrierCallID
	now := time.Now()
	o.mu.Lock()
	if at, ok := o.handled[key]; ok && now.Sub(at) < orphanMemory {
		o.mu.Unlock()
		return
	}
	for k, at := range o.handled {
		if now.Sub(at) >= orphanMemory {
			delete(o.handled, k)
		}
	}
	o.handled[key] = now
	o.mu.Unlock()

	client, ok := o.reg.Client(carrier)
	if !ok {
		o.log.Warn("orphan call not hung up: its carrier is gone", "carrier", carrier, "carrier_call_id", carrierCallID)
		return
	}
	o.goBounded(orphanHangupBudget, func(ctx context.Context) {
		var r Result
		for try := 0; ; try++ {
			r = client.Hangup(ctx, carrierCallID)
			if r.Outcome != CarrierFault || !r.Retryable || ctx.Err() != nil || try == 2 {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(hangupPause):
			}
		}
		result := "hung-up"
		if r.Outcome != Accepted {
			result = "failed"
			o.log.Warn("orphan call not hung up", "carrier", carrier, "carrier_call_id", carrierCallID, "via", via, "result", r.String())
		} else {
			o.log.Info("orphan call hung up", "carrier", carrier, "carrier_call_id", carrierCallID, "via", via)
		}
		o.metrics.orphans.WithLabelValues(carrier, via, result).Inc()
	})
}

// callLister is a client that can list an account's live calls to a number (Twilio).
type callLister interface {
	LiveCallsTo(ctx context.Context, to, from string, since time.Time) ([]string, Result)
}

// hunt looks for the call a maybe-created request left on carrier, twice shortly after the
// failover, and hangs up whatever live call to the callee from our number, created since the
// request was sent, is not a call we know. Twilio callbacks of the orphan usually find it
// sooner; this is for a carrier whose callbacks do not reach us.
func (o *orphans) hunt(carrier string, lister callLister, to, from string, since time.Time) {
	failover := time.Now()
	o.goBounded(orphanLookupBudget, func(ctx context.Context) {
		for _, at := range []time.Duration{orphanLookupFirst, orphanLookupSecond} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(failover.Add(at))):
			}
			sids, r := lister.LiveCallsTo(ctx, to, from, since)
			if r.Outcome != Accepted {
				o.log.Info("orphan lookup failed", "carrier", carrier, "result", r.String())
				continue
			}
			for _, sid := range sids {
				_, err := o.st.CallByCarrierID(ctx, sid, "")
				switch {
				case errors.Is(err, store.ErrNotFound):
					o.hangup(carrier, sid, "lookup")
				case err != nil:
					o.log.Info("orphan lookup: call not checked", "carrier", carrier, "carrier_call_id", sid, "err", err)
				}
			}
		}
	})
}
