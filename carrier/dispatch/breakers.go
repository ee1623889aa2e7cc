package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// Breakers holds one circuit breaker per carrier and keeps it in step with every other
// instance through Redis.
//
// The call path (Allow) does no I/O in the usual case: each carrier has a local
// gobreaker.TwoStepCircuitBreaker, built from its BreakerSettings with a rolling window, plus
// what Redis last said about the carrier (open for how long, half-open, forced), refreshed in
// the background by Run: a Pub/Sub wake-up whenever any instance opens, closes or forces a
// breaker, and a poll every PollInterval as a backstop, so every instance stops using a
// carrier well within 500 ms of the first one opening it. Outcomes go to Redis after the fact,
// through a queue that Run drains: one script call per outcome counts it in the shared rolling
// window and opens the breaker for everyone when the fleet's failures call for it; a local
// breaker that trips opens the shared one too.
//
// This is the design the library notes recommend over gobreaker's DistributedCircuitBreaker,
// which takes a Redis lock around every request and polls for it every 500 ms: that would put
// at least four round trips and a fleet-wide mutex on each call, and it fails closed when
// Redis is down. Here a Redis outage leaves each instance with its local breaker.
//
// Half-open is decided once for the fleet: when a shared open period ends, the carrier is
// half-open everywhere, and the one instance whose SET NX on the probe key wins sends the
// trial call; the others skip the carrier until the probe's outcome closes or reopens it.
// That claim is the only Redis round trip Allow can make, once per probe period per instance.
type Breakers struct {
	st       breakerStore
	reg      *carrier.Registry
	log      *slog.Logger
	metrics  *Metrics
	instance string
	poll     time.Duration

	all       sync.Map // carrier id -> *breaker
	sharedOK  atomic.Bool
	refreshMu sync.Mutex
	kick      chan struct{}
	jobs      chan func(context.Context) // sync work for Run; breaker_sync.go
}

// breakerStore is the shared state; *carrierdb.Store implements it.
type breakerStore interface {
	RecordBreakerOutcome(ctx context.Context, carrier string, failed bool, p carrierdb.BreakerPolicy) (bool, error)
	OpenBreaker(ctx context.Context, carrier string, openFor time.Duration, reopen bool) (bool, error)
	CloseBreaker(ctx context.Context, carrier string) error
	ClaimProbe(ctx context.Context, carrier, holder string, ttl time.Duration) (bool, error)
	ReleaseProbe(ctx context.Context, carrier, holder string) error
	ForceBreaker(ctx context.Context, carrier, force string, a store.Audit) error
	BreakerStates(ctx context.Context, carriers []string) (map[string]carrierdb.BreakerShared, error)
	BreakerWindowOf(ctx context.Context, carrier string, p carrierdb.BreakerPolicy) (carrierdb.BreakerWindow, error)
	WatchBreakers(ctx context.Context, changed func(carrier string)) error
	AddCarrierEvent(ctx context.Context, e carrierdb.Event) error
	MarkHeard(ctx context.Context, carrier string) error
	CarrierSilent(ctx context.Context, carrier string, window time.Duration) (bool, error)
}

// BreakerOptions tune Breakers; the zero value is fine.
type BreakerOptions struct {
	// PollInterval is how often the shared state is read even without a notification.
	// Default 250 ms: with Pub/Sub at most once, this bounds propagation to about half a
	// second in the worst case.
	PollInterval time.Duration
	Log          *slog.Logger
	Metrics      *Metrics
}

// Errors Allow answers with. Each wraps ErrBreakerOpen.
var (
	ErrBreakerOpen = errors.New("breaker open")
	ErrForcedOpen  = fmt.Errorf("%w: forced open by an admin", ErrBreakerOpen)
	ErrProbeBusy   = fmt.Errorf("%w: half-open, another instance is probing", ErrBreakerOpen)
)

// Outcomes a done func is given besides nil (success) and a plain error (failure).
var (
	// ErrNotCounted marks an outcome that says nothing about the carrier (a busy callee, an
	// invalid number, Redis too slow to tell): it counts neither way.
	ErrNotCounted = errors.New("outcome not counted")
	// ErrNoCallback is the failure of a call that the carrier accepted but never called back
	// about within the callback deadline.
	ErrNoCallback = errors.New("no callback within the deadline")
)

// NewBreakers returns breakers for the carriers in reg. Run must be running for them to share
// state; without it they are local breakers.
func NewBreakers(st breakerStore, reg *carrier.Registry, o BreakerOptions) *Breakers {
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	var id [6]byte
	rand.Read(id[:])
	return &Breakers{st: st, reg: reg, log: o.Log, metrics: o.Metrics, instance: hex.EncodeToString(id[:]),
		poll: o.PollInterval, kick: make(chan struct{}, 1), jobs: make(chan func(context.Context), 4096)}
}

// Instance is this process's name in probe claims.
func (b *Breakers) Instance() string { return b.instance }

// breaker is one carrier's breaker on this instance.
type breaker struct {
	id    string
	local atomic.Pointer[localBreaker]
	mu    sync.Mutex // serialises rebuilding local

	// What Redis last said; written by refresh, read by Allow.
	openUntil      atomic.Int64 // unix ms on this instance's clock
	halfOpen       atomic.Bool
	force          atomic.Int32
	probeBusyUntil atomic.Int64 // unix ms: another instance holds the probe claim

	// Carrier-level liveness (liveness.go): when this instance last heard from the carrier,
	// and whether Redis has yet to be told.
	heardAt    atomic.Int64 // unix ms
	heardDirty atomic.Bool
}

type localBreaker struct {
	settings carrier.BreakerSettings
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	// The jobs that share an outcome under these settings, made once: every call queues
	// one, and a closure made per call would cost an allocation on the call path.
	shareOK, shareFailed func(context.Context)
}

func (b *Breakers) breaker(id string) *breaker {
	if br, ok := b.all.Load(id); ok {
		return br.(*breaker)
	}
	br, _ := b.all.LoadOrStore(id, &breaker{id: id})
	return br.(*breaker)
}

// localFor returns the carrier's local breaker, rebuilt when its settings changed (an admin
// tuned them): counts start over, which is what new thresholds mean.
// A nil local (after the fleet's breaker closed) is rebuilt the same way.
func (b *Breakers) localFor(br *breaker, s carrier.BreakerSettings) *localBreaker {
	if l := br.local.Load(); l != nil && l.settings == s {
		return l
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	if l := br.local.Load(); l != nil && l.settings == s {
		return l
	}
	l := &localBreaker{settings: s, cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         br.id,
		MaxRequests:  1,
		Interval:     s.Window.Std(),
		BucketPeriod: s.BucketPeriod.Std(),
		Timeout:      s.OpenTimeout.Std(),
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return int(c.ConsecutiveFailures) >= s.FailureThreshold ||
				(int(c.Requests) >= s.MinRequests && float64(c.TotalFailures) >= s.FailureRatio*float64(c.Requests))
		},
		IsExcluded: func(err error) bool { return errors.Is(err, ErrNotCounted) },
		// This runs under the breaker's mutex: hand the change to Run, never call back in.
		OnStateChange: func(name string, from, to gobreaker.State) {
			select {
			case b.jobs <- func(ctx context.Context) { b.shareLocalChange(ctx, name, from, to, s) }:
			default:
			}
		},
	})}
	policy := policyOf(s)
	l.shareOK = func(ctx context.Context) { b.shareOutcome(ctx, br.id, false, policy) }
	l.shareFailed = func(ctx context.Context) { b.shareOutcome(ctx, br.id, true, policy) }
	br.local.Store(l)
	return l
}

// Allow asks whether a call may be tried on carrier id now. On nil error the caller must call
// done exactly once with the outcome: nil for success, an error wrapping ErrNotCounted for
// an outcome that says nothing about the carrier, any other error for a failure. Calling it
// again does nothing.
func (b *Breakers) Allow(ctx context.Context, id string) (done func(error), err error) {
	cfg, ok := b.reg.Get(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", carrier.ErrNotFound, id)
	}
	br := b.breaker(id)
	switch Force(br.force.Load()) {
	case ForceOpen:
		return nil, ErrForcedOpen
	case ForceClosed:
		return func(error) {}, nil
	}
	now := time.Now().UnixMilli()
	if now < br.openUntil.Load() {
		return nil, ErrBreakerOpen
	}
	probing := false
	if br.halfOpen.Load() && b.sharedOK.Load() {
		if now < br.probeBusyUntil.Load() {
			return nil, ErrProbeBusy
		}
		ttl := probeTTL(cfg)
		cctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		won, err := b.st.ClaimProbe(cctx, id, b.instance, ttl)
		cancel()
		switch {
		case errors.Is(err, carrierdb.ErrNotHalfOpen):
			// Another instance's probe closed the breaker; this one has not heard yet. The
			// call goes ahead as on a closed breaker.
			br.halfOpen.Store(false)
			b.wake()
		case err != nil:
			// Redis cannot arbitrate: the local breaker decides, as it does whenever the
			// shared state is out of reach.
			b.log.Warn("half-open probe not claimed; the local breaker decides", "carrier", id, "err", err)
		case !won:
			br.probeBusyUntil.Store(now + ttl.Milliseconds())
			return nil, ErrProbeBusy
		default:
			probing = true
		}
	}
	local := b.localFor(br, cfg.Breaker)
	localDone, err := local.cb.Allow()
	if err != nil {
		if probing {
			b.enqueue(func(ctx context.Context) { b.releaseProbe(ctx, id) })
		}
		return nil, fmt.Errorf("%w on this instance", ErrBreakerOpen)
	}
	if probing {
		detail := "half-open: instance " + b.instance + " sends the trial call"
		b.enqueue(func(ctx context.Context) { b.shareEvent(ctx, id, "breaker-probe", detail) })
	}
	var once atomic.Bool
	policy := policyOf(cfg.Breaker)
	return func(outcome error) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		localDone(outcome)
		counted, failed := !errors.Is(outcome, ErrNotCounted), outcome != nil
		switch {
		case probing && !counted:
			b.enqueue(func(ctx context.Context) { b.releaseProbe(ctx, id) })
		case probing && failed:
			detail := outcome.Error()
			b.enqueue(func(ctx context.Context) { b.reopenAfterProbe(ctx, id, policy, detail) })
		case probing:
			b.enqueue(func(ctx context.Context) { b.closeAfterProbe(ctx, id) })
		case counted && failed:
			b.enqueue(local.shareFailed)
		case counted:
			b.enqueue(local.shareOK)
		}
		if !probing && errors.Is(outcome, ErrNoCallback) {
			b.enqueue(func(ctx context.Context) { b.checkSilent(ctx, id, cfg.Breaker, false) })
		}
	}, nil
}

// probeTTL bounds a probe claim by the longest a trial call can take to prove itself: its
// request, then its callback deadline, plus slack. An instance that dies mid-probe frees the
// claim when it expires.
func probeTTL(cfg carrier.Config) time.Duration {
	return carrier.RequestTimeout(cfg) + cfg.Breaker.CallbackDeadline.Std() + 2*time.Second
}

func policyOf(s carrier.BreakerSettings) carrierdb.BreakerPolicy {
	return carrierdb.BreakerPolicy{FailureThreshold: s.FailureThreshold, FailureRatio: s.FailureRatio, MinRequests: s.MinRequests,
		Window: s.Window.Std(), BucketPeriod: s.BucketPeriod.Std(), OpenTimeout: s.OpenTimeout.Std()}
}

// Admits says, without I/O or side effects, whether Allow would consider carrier now, and if
// not, why. Allow may still refuse (another instance may win the probe).
func (b *Breakers) Admits(carrier string) (BreakerState, string) {
	br := b.breaker(carrier)
	switch Force(br.force.Load()) {
	case ForceOpen:
		return BreakerOpen, "drained: breaker forced open by an admin"
	case ForceClosed:
		return BreakerClosed, ""
	}
	now := time.Now().UnixMilli()
	if until := br.openUntil.Load(); now < until {
		return BreakerOpen, "breaker open for another " + (time.Duration(until-now) * time.Millisecond).String()
	}
	if br.halfOpen.Load() && b.sharedOK.Load() {
		if now < br.probeBusyUntil.Load() {
			return BreakerHalfOpen, "half-open: another instance is probing"
		}
		return BreakerHalfOpen, ""
	}
	l := br.local.Load()
	if l == nil {
		return BreakerClosed, ""
	}
	switch l.cb.State() {
	case gobreaker.StateOpen:
		return BreakerOpen, "breaker open on this instance"
	case gobreaker.StateHalfOpen:
		if l.cb.Counts().Requests >= 1 {
			return BreakerHalfOpen, "half-open on this instance: a trial call is in flight"
		}
		return BreakerHalfOpen, ""
	}
	return BreakerClosed, ""
}

// State is carrier's breaker state as this instance applies it.
func (b *Breakers) State(carrier string) BreakerState {
	s, _ := b.Admits(carrier)
	return s
}

// BreakerStatus is everything known about one carrier's breaker, for the admin API.
type BreakerStatus struct {
	Carrier string       `json:"carrier"`
	State   BreakerState `json:"state"`
	Force   Force        `json:"force"`
	// Reason says why the carrier is skipped, if it is.
	Reason string `json:"reason,omitempty"`
	// OpenFor is how long the shared breaker stays open.
	OpenFor  carrier.Duration        `json:"open_for"`
	HalfOpen bool                    `json:"half_open"`
	Prober   string                  `json:"prober,omitempty"`
	Window   carrierdb.BreakerWindow `json:"window"` // the fleet's rolling window
	Local    LocalCounts             `json:"local"`  // this instance's breaker
	Shared   bool                    `json:"shared"` // whether Redis could be read
	Settings carrier.BreakerSettings `json:"settings"`
	Instance string                  `json:"instance"`
}

// LocalCounts is this instance's breaker.
type LocalCounts struct {
	State               BreakerState `json:"state"`
	Requests            uint32       `json:"requests"`
	Failures            uint32       `json:"failures"`
	ConsecutiveFailures uint32       `json:"consecutive_failures"`
}

// Status reads the breaker of carrier id, shared and local.
func (b *Breakers) Status(ctx context.Context, id string) (BreakerStatus, error) {
	cfg, ok := b.reg.Get(id)
	if !ok {
		return BreakerStatus{}, fmt.Errorf("%w: %s", carrier.ErrNotFound, id)
	}
	br := b.breaker(id)
	st := BreakerStatus{Carrier: id, Settings: cfg.Breaker, Instance: b.instance, Force: Force(br.force.Load())}
	if st.Force == ForceUnknown {
		st.Force = ForceAuto
	}
	st.State, st.Reason = b.Admits(id)
	local := b.localFor(br, cfg.Breaker)
	c := local.cb.Counts()
	st.Local = LocalCounts{State: fromGobreaker(local.cb.State()), Requests: c.Requests, Failures: c.TotalFailures,
		ConsecutiveFailures: c.ConsecutiveFailures}
	// An admin's force applies on every instance, this one included: its breaker is in the
	// forced state whatever its own counts would make of it (the counts stay its own).
	switch st.Force {
	case ForceOpen:
		st.Local.State = BreakerOpen
	case ForceClosed:
		st.Local.State = BreakerClosed
	}
	shared, err := b.st.BreakerStates(ctx, []string{id})
	if err != nil {
		// Redis is unreachable: the status is the local view alone, and Shared says so.
		return st, nil //nolint:nilerr // a status without the shared part is the right answer here
	}
	st.Shared = true
	s := shared[id]
	st.OpenFor, st.HalfOpen, st.Prober = carrier.Duration(s.OpenFor), s.HalfOpen && s.OpenFor == 0, s.Prober
	st.Window, _ = b.st.BreakerWindowOf(ctx, id, policyOf(cfg.Breaker))
	return st, nil
}

// Force sets an admin's override of carrier id's breaker for every instance, audited as actor.
func (b *Breakers) Force(ctx context.Context, id string, f Force, actor string) error {
	if _, ok := b.reg.Get(id); !ok {
		return fmt.Errorf("%w: %s", carrier.ErrNotFound, id)
	}
	if f == ForceUnknown {
		f = ForceAuto
	}
	err := b.st.ForceBreaker(ctx, id, f.stored(), store.Audit{Actor: actor, Action: "breaker.force", Target: id, Detail: f.String()})
	if err != nil {
		return err
	}
	// This instance applies it at once; the others on their notification.
	b.breaker(id).force.Store(int32(f))
	b.wake()
	// The console's "recent" list shows a drain or restore beside the breaker changes it
	// causes; the audit log already holds it, so a lost event is only logged.
	e := carrierdb.Event{Kind: "breaker-forced", Carrier: id, Next: f.String(), Detail: "by " + actor}
	if err := b.st.AddCarrierEvent(ctx, e); err != nil {
		b.log.Warn("carrier event of a forced breaker not recorded", "carrier", id, "err", err)
	}
	return nil
}
