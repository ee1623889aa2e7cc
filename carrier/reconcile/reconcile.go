// Package reconcile makes every call's record right in the end: calls that went quiet are
// looked up on their carrier's REST API (carrier.StatusChecker) on a schedule shared in Redis,
// and what the carrier says is stored as an ordinary event (docs/reconcile.md). It reads the
// breakers' states to look at a sick carrier's calls first; it places no call and hangs up
// none (that is the placer's and the actions' work).
package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
)

// Reconciler makes every call's record right in the end, whatever its carrier's callbacks
// did: a call that has had no event for After is looked up on its carrier's REST API, and what
// the carrier says is stored as an ordinary event with source "reconciled" (same dedupe, same
// forward-only rule). A call the carrier reports live is checked again with backoff (the gap
// doubles from After, up to MaxBackoff), so a long call costs a few dozen look-ups.
//
// The schedule is shared in Redis (see store.ClaimReconcile): any instance may run a check,
// exactly one does each, and an instance that dies loses none (its claims are taken over
// after their lease). A carrier whose API fails is left alone: its checks wait, longer with
// each failure. A carrier whose breaker is not closed gets one look-up first, alone, in each
// round of checks: its callbacks may be what failed while its API answers (the 2018 incident),
// and then its calls are the ones that need checking most. When its breaker closes, its live
// calls are checked at once.
type Reconciler struct {
	d Deps

	mu      sync.Mutex
	health  map[string]*lookupHealth // carrier id ->
	cursor  int64                    // newest creation time (unix ms) scheduled from the active index
	recent  map[string]int64         // calls scheduled within the overlap window, by creation time
	lastAll time.Time                // last full sweep of the active index
}

// reconcileStore is what reconciling needs from the store; *store.Redis implements it.
type reconcileStore interface {
	Apply(ctx context.Context, e call.Event) (store.Applied, error)
	ActiveSince(ctx context.Context, since, limit int64) ([]store.ActiveEntry, error)
	ScheduleReconcile(ctx context.Context, delay time.Duration, calls []store.ActiveEntry) error
	SweepReconcile(ctx context.Context, delay time.Duration) error
	ClaimReconcile(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.ReconcileClaim, error)
	SettleReconcile(ctx context.Context, c store.ReconcileClaim, next time.Time) error
	ExpediteReconcile(ctx context.Context, at time.Time, ids ...string) error
	ReconcileBacklog(ctx context.Context, now time.Time) (due, claimed int64, err error)
	CallHeads(ctx context.Context, ids []string) ([]store.CallHead, error)
	ActiveCallIDs(ctx context.Context) ([]string, error)
}

// breakerStates is what reconciling needs from the breakers; *Breakers implements it.
type breakerStates interface {
	State(carrierID string) dispatch.BreakerState
}

// Deps are what a Reconciler needs. Store and carrier.Registry are required.
type Deps struct {
	Store    reconcileStore
	Registry *carrier.Registry
	Breakers breakerStates // nil: every breaker counts as closed
	// After is SWITCHBOARD_RECONCILE_AFTER: how long a call may go without any event before
	// its carrier is asked about it. Default 30 s.
	After time.Duration
	// MaxBackoff caps the gap between checks of a call the carrier keeps reporting live.
	// Default 5 min.
	MaxBackoff time.Duration
	// Grace is how long after its media stream closed a call is checked: time for the real
	// final callback to arrive first. Default 5 s.
	Grace time.Duration
	// GoneAfter is how long a call the carrier no longer knows must have been quiet before it
	// is recorded as ended. carrier.Telnyx forgets a call 10 minutes after it ended. Default 15 min.
	GoneAfter time.Duration
	// Lease is how long a claimed check is held before another instance may take it over.
	// It must outlast a look-up (a check whose lease has less left than its carrier's request
	// timeout is put back instead of run). Default 30 s, at least 15 s.
	Lease time.Duration
	// Tick is how often the schedule is read. Default 1 s, or After/4 when that is shorter.
	Tick time.Duration
	// Batch bounds the checks claimed at once; Parallel the look-ups in flight. Defaults 64, 8.
	Batch, Parallel int
	// ErrorPause is how long a carrier's checks wait after its API failed; it doubles with
	// each failure in a row, up to MaxBackoff. Default 2 s.
	ErrorPause time.Duration
	Metrics    *Metrics
	Log        *slog.Logger
}

// NewReconciler returns a Reconciler; Run does the work.
func New(d Deps) *Reconciler {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.After, 30*time.Second)
	def(&d.MaxBackoff, 5*time.Minute)
	def(&d.Grace, 5*time.Second)
	def(&d.GoneAfter, 15*time.Minute)
	def(&d.Lease, carrier.MaxRequestTimeout+20*time.Second)
	// A lease shorter than a look-up could take would put every check back unrun.
	d.Lease = max(d.Lease, carrier.MaxRequestTimeout+5*time.Second)
	def(&d.Tick, min(time.Second, d.After/4))
	def(&d.ErrorPause, 2*time.Second)
	if d.Batch <= 0 {
		d.Batch = 64
	}
	if d.Parallel <= 0 {
		d.Parallel = 8
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{d: d, health: map[string]*lookupHealth{}, recent: map[string]int64{}}
}

// Soon asks for callID to be checked after the grace period, whatever its last event: its
// media stream closed, and its final callback may never come.
func (r *Reconciler) Soon(ctx context.Context, callID string) error {
	return r.d.Store.ExpediteReconcile(ctx, time.Now().Add(r.d.Grace), callID)
}

// fullSweepEvery is how often the whole active-call index is scheduled again, as a backstop
// for a call that entered it out of order (see schedule).
const fullSweepEvery = 5 * time.Minute

// Run checks due calls until ctx ends. It starts with a sweep: every active call without a
// check gets one, so calls of an instance that died are not forgotten.
func (r *Reconciler) Run(ctx context.Context) error {
	r.cursor = time.Now().Add(-scheduleOverlap).UnixMilli()
	t := time.NewTicker(r.d.Tick)
	defer t.Stop()
	for {
		if time.Since(r.lastAll) > fullSweepEvery {
			if err := r.d.Store.SweepReconcile(ctx, r.d.After); err != nil {
				if ctx.Err() == nil {
					r.d.Log.Warn("reconcile: active calls not swept; trying again", "err", err)
				}
			} else {
				r.lastAll = time.Now()
			}
		}
		r.schedule(ctx)
		r.watchBreakers(ctx)
		// A full batch means more may be due: claim again before waiting for the tick.
		for ctx.Err() == nil {
			if r.round(ctx) < r.d.Batch {
				break
			}
		}
		if due, claimed, err := r.d.Store.ReconcileBacklog(ctx, time.Now()); err == nil {
			r.d.Metrics.due.Set(float64(due))
			r.d.Metrics.claimed.Set(float64(claimed))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// scheduleOverlap is how far back each read of the active-call index reaches behind the
// newest call seen: an instance writes a call's creation time a little before the index
// holds it, and instances' clocks differ a little.
const scheduleOverlap = 3 * time.Second

// schedule gives the calls created since the last look a check, After after their creation.
func (r *Reconciler) schedule(ctx context.Context) {
	const page = 1000
	for {
		calls, err := r.d.Store.ActiveSince(ctx, r.cursor-scheduleOverlap.Milliseconds(), page)
		if err != nil {
			return
		}
		fresh := calls[:0:0]
		for _, c := range calls {
			if _, seen := r.recent[c.CallID]; !seen {
				fresh = append(fresh, c)
			}
		}
		if err := r.d.Store.ScheduleReconcile(ctx, r.d.After, fresh); err != nil {
			return
		}
		for _, c := range fresh {
			r.recent[c.CallID] = c.Created
			r.cursor = max(r.cursor, c.Created)
		}
		for id, created := range r.recent {
			if created < r.cursor-2*scheduleOverlap.Milliseconds() {
				delete(r.recent, id)
			}
		}
		if len(calls) < page || len(fresh) == 0 {
			return
		}
	}
}

// watchBreakers checks at once the live calls of every carrier whose breaker closed since
// the last look: their callbacks may have been lost while it was open.
func (r *Reconciler) watchBreakers(ctx context.Context) {
	if r.d.Breakers == nil {
		return
	}
	var closed []string
	for _, cfg := range r.d.Registry.All() {
		s := r.d.Breakers.State(cfg.ID)
		h := r.healthOf(cfg.ID)
		r.mu.Lock()
		if h.notClosed && s == dispatch.BreakerClosed {
			closed = append(closed, cfg.ID)
		}
		h.notClosed = s != dispatch.BreakerClosed
		r.mu.Unlock()
	}
	for _, id := range closed {
		r.recovered(id) // checks paused by failed look-ups resume too
		n, err := r.CheckCarrierNow(ctx, id)
		if err != nil {
			r.d.Log.Warn("reconcile: calls of a recovered carrier not scheduled", "carrier", id, "err", err)
			continue
		}
		r.d.Log.Info("reconcile: breaker closed; checking the carrier's live calls now", "carrier", id, "calls", n)
	}
}

// CheckCarrierNow makes every live call of carrier due now, and forced.
func (r *Reconciler) CheckCarrierNow(ctx context.Context, carrier string) (int, error) {
	ids, err := r.d.Store.ActiveCallIDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for chunk := range chunks(ids, 500) {
		heads, err := r.d.Store.CallHeads(ctx, chunk)
		if err != nil {
			return n, err
		}
		var mine []string
		for _, h := range heads {
			if h.Found && h.Carrier == carrier && !h.State.Terminal() {
				mine = append(mine, h.ID)
			}
		}
		if err := r.d.Store.ExpediteReconcile(ctx, time.Now(), mine...); err != nil {
			return n, err
		}
		n += len(mine)
	}
	return n, nil
}

func chunks(ids []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(ids) > 0 {
			k := min(n, len(ids))
			if !yield(ids[:k]) {
				return
			}
			ids = ids[k:]
		}
	}
}

// round claims one batch of due checks and runs them; it returns how many it claimed.
func (r *Reconciler) round(ctx context.Context) int {
	claims, err := r.d.Store.ClaimReconcile(ctx, time.Now(), r.d.Lease, r.d.Batch)
	if err != nil || len(claims) == 0 {
		return 0
	}
	ids := make([]string, len(claims))
	for i, c := range claims {
		ids[i] = c.CallID
	}
	heads, err := r.d.Store.CallHeads(ctx, ids)
	if err != nil {
		// The claims' leases run out and they are checked again; nothing is lost.
		return len(claims)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.d.Parallel)
	probed := map[string]bool{}
	for i, c := range claims {
		h := heads[i]
		next, result, lookup := r.plan(c, h)
		if lookup {
			// Wait for a free slot first, then decide again: the look-ups in flight may have
			// paused the carrier, or used up this claim's lease.
			sem <- struct{}{}
			next, result, lookup = r.plan(c, h)
			if lookup && time.Until(time.UnixMilli(c.Lease)) < r.lookupTimeout(h.Carrier)+time.Second {
				// A look-up now could outlive the lease and overlap another instance's
				// check of the call: put it back, due at once.
				next, result, lookup = time.Now(), "requeued", false
			}
			if !lookup {
				<-sem
			}
		}
		if !lookup {
			r.settle(ctx, c, h, next, result)
			continue
		}
		if r.breakerOpen(h.Carrier) && !probed[h.Carrier] {
			// The carrier's breaker is not closed: one look-up first, alone. If it fails the
			// carrier's checks pause (plan sees it); if it answers, its API is well even if
			// its callbacks are not (the incident's shape), and the rest go ahead.
			probed[h.Carrier] = true
			next, result := r.check(ctx, h)
			r.settle(ctx, c, h, next, result)
			<-sem
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			next, result := r.check(ctx, h)
			r.settle(ctx, c, h, next, result)
		})
	}
	wg.Wait()
	return len(claims)
}

// plan decides what a claimed check does without asking the carrier: drop an ended call,
// reschedule one that had an event lately or whose carrier is not to be asked now. lookup
// says the carrier must be asked.
func (r *Reconciler) plan(c store.ReconcileClaim, h store.CallHead) (next time.Time, result string, lookup bool) {
	now := time.Now()
	switch {
	case !h.Found || h.State.Terminal():
		return time.Time{}, "dropped", false
	case h.Carrier == "" || h.CarrierCallID == "":
		// No carrier took it yet (placement in progress, or the instance placing it died
		// before the carrier answered): nobody to ask.
		return now.Add(r.backoff(h, now)), "no-carrier", false
	case !c.Forced && now.Sub(h.UpdatedAt) < r.d.After:
		return h.UpdatedAt.Add(r.d.After), "recent", false
	}
	if until := r.pausedUntil(h.Carrier); now.Before(until) {
		return until, "deferred", false
	}
	if _, ok := r.checker(h.Carrier); !ok {
		return now.Add(r.backoff(h, now)), "no-carrier", false
	}
	return time.Time{}, "", true
}

// backoff is the gap before the next check of a call that has been quiet since its last
// event: as long as it has been quiet, at least After and at most MaxBackoff. Checks of a
// quiet call thus come After, After, 2·After, 4·After ... after its last event.
func (r *Reconciler) backoff(h store.CallHead, now time.Time) time.Duration {
	return min(max(now.Sub(h.UpdatedAt), r.d.After), r.d.MaxBackoff)
}

// lookupTimeout is the longest a look-up on carrier id may take.
func (r *Reconciler) lookupTimeout(id string) time.Duration {
	cfg, ok := r.d.Registry.Get(id)
	if !ok {
		return carrier.MaxRequestTimeout
	}
	return carrier.RequestTimeout(cfg)
}

func (r *Reconciler) breakerOpen(id string) bool {
	return r.d.Breakers != nil && r.d.Breakers.State(id) != dispatch.BreakerClosed
}

func (r *Reconciler) checker(id string) (carrier.StatusChecker, bool) {
	c, ok := r.d.Registry.Client(id)
	if !ok {
		return nil, false
	}
	sc, ok := c.(carrier.StatusChecker)
	return sc, ok
}

// check asks the carrier about one call and stores what it says.
func (r *Reconciler) check(ctx context.Context, h store.CallHead) (time.Time, string) {
	sc, _ := r.checker(h.Carrier)
	r.d.Metrics.lookups.WithLabelValues(h.Carrier).Inc()
	st := sc.CallStatus(ctx, h.CarrierCallID)
	now := time.Now()
	if st.Liveness == carrier.LookupFailed {
		if ctx.Err() != nil {
			return now, "error" // shutting down: the carrier is not to blame
		}
		return r.failed(h.Carrier, st), "error"
	}
	r.recovered(h.Carrier)
	switch st.Liveness {
	case carrier.Live:
		if st.State != call.Unknown && call.Advances(h.State, st.State) {
			if err := r.store(ctx, h, st.State, now, "carrier reports "+st.Reason); err != nil {
				return now.Add(r.d.After), "error"
			}
			return now.Add(r.d.After), "advanced"
		}
		return now.Add(r.backoff(h, now)), "live"
	case carrier.Ended:
		at := st.EndedAt
		if at.IsZero() {
			at = now
		}
		if err := r.store(ctx, h, carrier.EndingState(st, h.State), at, "carrier reports "+st.Reason); err != nil {
			return now.Add(r.d.After), "error"
		}
		if !st.EndedAt.IsZero() {
			r.d.Metrics.learnt.WithLabelValues(h.Carrier).Observe(now.Sub(st.EndedAt).Seconds())
		}
		return time.Time{}, "ended"
	default: // carrier.Gone
		if now.Sub(h.UpdatedAt) < r.d.GoneAfter {
			return now.Add(r.backoff(h, now)), "gone"
		}
		if err := r.store(ctx, h, carrier.EndingState(carrier.CallStatus{Liveness: carrier.Ended}, h.State), now,
			"carrier no longer knows the call ("+st.Reason+")"); err != nil {
			return now.Add(r.d.After), "error"
		}
		return time.Time{}, "gone"
	}
}

// store applies what the carrier said as an ordinary event. Its id names the call and the
// state, so two instances (or a retry) learning the same thing store it once.
func (r *Reconciler) store(ctx context.Context, h store.CallHead, s call.State, at time.Time, detail string) error {
	id := "rc:" + h.ID + ":" + s.String()
	if s.Terminal() {
		id = "rc:" + h.ID + ":end"
	}
	_, err := r.d.Store.Apply(ctx, call.Event{ID: id, CallID: h.ID, Carrier: h.Carrier, CarrierCallID: h.CarrierCallID,
		State: s, At: at, Detail: detail, Source: call.SourceReconciled})
	if err != nil {
		r.d.Log.Warn("reconcile: what the carrier said was not stored; checking again later", "call", h.ID, "err", err)
	}
	return err
}

func (r *Reconciler) settle(ctx context.Context, c store.ReconcileClaim, h store.CallHead, next time.Time, result string) {
	carrier := h.Carrier
	if carrier == "" {
		carrier = "none"
	}
	// Settle even while shutting down, briefly: a claim left behind waits out its lease.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	switch err := r.d.Store.SettleReconcile(ctx, c, next); {
	case errors.Is(err, store.ErrLeaseLost):
		result = "lost"
	case err != nil:
		r.d.Log.Debug("reconcile: check not settled; its lease will run out", "call", c.CallID, "err", err)
	}
	r.d.Metrics.checks.WithLabelValues(carrier, result).Inc()
}
