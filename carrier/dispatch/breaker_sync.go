package dispatch

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// Run keeps the breakers in step with Redis until ctx ends: it watches for changes, polls as
// a backstop, and writes outcomes. It returns nil when ctx ends.
func (b *Breakers) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		if err := b.st.WatchBreakers(ctx, func(string) { b.wake() }); err != nil {
			b.log.Warn("breaker changes are not watched; polling only", "err", err)
		}
	})
	wg.Go(func() { b.work(ctx) })
	wg.Go(func() { b.flushHeard(ctx) })
	b.refresh(ctx)
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-b.kick:
		}
		b.refresh(ctx)
	}
}

func (b *Breakers) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// refresh reads every carrier's shared state. Refreshes are serialised so that an older read
// never overwrites a newer one.
func (b *Breakers) refresh(ctx context.Context) {
	b.refreshMu.Lock()
	defer b.refreshMu.Unlock()
	cfgs := b.reg.All()
	ids := make([]string, len(cfgs))
	for i, c := range cfgs {
		ids[i] = c.ID
	}
	states, err := b.st.BreakerStates(ctx, ids)
	now := time.Now().UnixMilli()
	if err != nil {
		if b.sharedOK.Swap(false) && ctx.Err() == nil {
			b.log.Warn("breaker state is not shared while Redis is unreachable; each instance keeps its local breakers", "err", err)
		}
		// Without Redis nobody can arbitrate a probe: the local breakers decide. A known
		// open period still runs out by itself, and an admin's force stays.
		b.all.Range(func(_, v any) bool {
			v.(*breaker).halfOpen.Store(false)
			return true
		})
	} else {
		if !b.sharedOK.Swap(true) {
			b.log.Info("breaker state is shared through Redis")
		}
		for _, id := range ids {
			s, br := states[id], b.breaker(id)
			until := int64(0)
			if s.OpenFor > 0 {
				until = now + s.OpenFor.Milliseconds()
			}
			br.openUntil.Store(until)
			if br.halfOpen.Swap(s.HalfOpen) && !s.HalfOpen && s.OpenFor == 0 {
				// A trial call succeeded (here or on another instance): the fleet's breaker
				// closed, so a local breaker still open or half-open from its own trip starts
				// over closed rather than waiting for a trial call of its own.
				br.local.Store(nil)
			}
			br.force.Store(int32(forceOf(s.Force)))
			switch s.Prober {
			case "", b.instance:
				br.probeBusyUntil.Store(0)
			default:
				if br.probeBusyUntil.Load() < now {
					br.probeBusyUntil.Store(now + b.poll.Milliseconds())
				}
			}
		}
	}
	for _, id := range ids {
		b.metrics.breakerState.WithLabelValues(id).Set(b.State(id).Gauge())
	}
}

// enqueue hands job to Run. When the queue is full (Redis has been slow for a while) the
// job is dropped: the local breaker has the outcome already, and waiting would put Redis on
// the call path.
func (b *Breakers) enqueue(job func(context.Context)) {
	select {
	case b.jobs <- job:
	default:
		b.metrics.droppedOutcomes.Inc()
	}
}

// work runs the queued jobs, one at a time, until ctx ends.
func (b *Breakers) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-b.jobs:
			job(ctx)
		}
	}
}

// unshared says that Redis is unreachable: the local breaker has the outcome; the fleet
// cannot, so a job that shares one does nothing.
func (b *Breakers) unshared() bool { return !b.sharedOK.Load() }

// The jobs, one function per kind. Each runs on Run's worker, never on the call path.

// shareOutcome counts a call's outcome in the fleet's rolling window, which opens the shared
// breaker when the fleet's failures call for it.
func (b *Breakers) shareOutcome(ctx context.Context, carrier string, failed bool, policy carrierdb.BreakerPolicy) {
	if b.unshared() {
		return
	}
	opened, err := b.st.RecordBreakerOutcome(ctx, carrier, failed, policy)
	if err != nil {
		b.log.Debug("breaker outcome not shared", "carrier", carrier, "err", err)
		return
	}
	if opened {
		b.log.Warn("breaker opened by the fleet's failures", "carrier", carrier, "open_for", policy.OpenTimeout)
		b.event(ctx, carrier, "breaker-open", "failures across the fleet passed the threshold; open for "+policy.OpenTimeout.String())
		b.wake()
	}
}

// shareLocalChange follows a change of this instance's breaker: a local breaker that trips
// opens the shared one too.
func (b *Breakers) shareLocalChange(ctx context.Context, carrier string, from, to gobreaker.State, s carrier.BreakerSettings) {
	b.metrics.breakerState.WithLabelValues(carrier).Set(b.State(carrier).Gauge())
	b.log.Info("local breaker changed", "carrier", carrier, "from", from.String(), "to", to.String())
	if to != gobreaker.StateOpen || b.unshared() {
		return
	}
	opened, err := b.st.OpenBreaker(ctx, carrier, s.OpenTimeout.Std(), false)
	if err != nil {
		b.log.Warn("breaker opened here but not shared", "carrier", carrier, "err", err)
		return
	}
	if opened {
		b.log.Warn("breaker opened", "carrier", carrier, "by", b.instance, "open_for", s.OpenTimeout)
		b.event(ctx, carrier, "breaker-open", "instance "+b.instance+" saw "+strconv.Itoa(s.FailureThreshold)+
			"+ failures; open for "+s.OpenTimeout.String())
		b.wake()
	}
}

// closeAfterProbe closes the fleet's breaker: this instance's trial call succeeded.
func (b *Breakers) closeAfterProbe(ctx context.Context, carrier string) {
	if b.unshared() {
		return
	}
	if err := b.st.CloseBreaker(ctx, carrier); err != nil {
		b.log.Warn("probe succeeded but the breaker was not closed", "carrier", carrier, "err", err)
		return
	}
	b.log.Info("breaker closed: the trial call succeeded", "carrier", carrier)
	b.event(ctx, carrier, "breaker-closed", "trial call by instance "+b.instance+" succeeded")
	b.wake()
}

// reopenAfterProbe opens the fleet's breaker again: this instance's trial call failed.
func (b *Breakers) reopenAfterProbe(ctx context.Context, carrier string, policy carrierdb.BreakerPolicy, reason string) {
	if b.unshared() {
		return
	}
	if _, err := b.st.OpenBreaker(ctx, carrier, policy.OpenTimeout, true); err != nil {
		b.log.Warn("probe failed but the breaker was not reopened", "carrier", carrier, "err", err)
		return
	}
	b.log.Warn("breaker reopened: the trial call failed", "carrier", carrier, "reason", reason)
	b.event(ctx, carrier, "breaker-open", "trial call failed ("+reason+"); open for "+policy.OpenTimeout.String())
	b.wake()
}

// releaseProbe gives back a probe claim whose call said nothing about the carrier (or never
// went out), so that another trial call can be made at once.
func (b *Breakers) releaseProbe(ctx context.Context, carrier string) {
	if b.unshared() {
		return
	}
	if err := b.st.ReleaseProbe(ctx, carrier, b.instance); err != nil {
		b.log.Debug("probe claim not released; it expires", "carrier", carrier, "err", err)
	}
	b.wake()
}

// checkSilent follows a call the carrier accepted and never called back about: a carrier
// nobody heard from within the callback deadline opens the shared breaker (liveness.go).
func (b *Breakers) checkSilent(ctx context.Context, carrier string, s carrier.BreakerSettings, confirm bool) {
	if b.unshared() {
		return
	}
	if detail, opened := b.openIfSilent(ctx, carrier, s, confirm); opened {
		b.event(ctx, carrier, "breaker-open", detail)
	}
}

// shareEvent records a carrier event for the admins.
func (b *Breakers) shareEvent(ctx context.Context, carrier, kind, detail string) {
	if b.unshared() {
		return
	}
	b.event(ctx, carrier, kind, detail)
}

func (b *Breakers) event(ctx context.Context, carrier, kind, detail string) {
	if err := b.st.AddCarrierEvent(ctx, carrierdb.Event{Kind: kind, Carrier: carrier, Detail: detail}); err != nil {
		b.log.Debug("carrier event not recorded", "err", err)
	}
}
