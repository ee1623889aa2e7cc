package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
)

// liveness turns "did the carrier call back in time" into the outcome of a breaker attempt.
// Each attempt's done is called exactly once: the map entry is removed under the lock by
// whichever comes first (a notification, the deadline, a cancel, or stop), and only that one
// calls done.
type liveness struct {
	st      placerStore
	metrics *Metrics
	log     *slog.Logger

	mu      sync.Mutex
	watches map[string]*watch // by call id
	stopped bool
}

type watch struct {
	carrier string
	seen    bool // a state change arrived before the carrier's answer did
	done    func(error)
	timer   *time.Timer
}

func newLiveness(st placerStore, m *Metrics, log *slog.Logger) *liveness {
	return &liveness{st: st, metrics: m, log: log, watches: map[string]*watch{}}
}

// expect starts listening for callID before its request goes out: a carrier's first
// callback can arrive before its answer to the request does.
func (l *liveness) expect(callID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watches[callID] = &watch{}
}

// cancel stops listening for an attempt that was not accepted.
func (l *liveness) cancel(callID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.watches, callID)
}

// arm waits for the first state change of an accepted call for at most deadline, then
// reports the outcome through done.
func (l *liveness) arm(callID, carrier string, deadline time.Duration, done func(error)) {
	l.mu.Lock()
	w, ok := l.watches[callID]
	if !ok || l.stopped {
		l.mu.Unlock()
		done(ErrNotCounted)
		return
	}
	w.carrier, w.done = carrier, done
	if w.seen {
		delete(l.watches, callID)
		l.mu.Unlock()
		l.metrics.liveness.WithLabelValues(carrier, "callback").Inc()
		done(nil)
		return
	}
	w.timer = time.AfterFunc(deadline, func() { l.expire(callID, w) })
	l.mu.Unlock()
}

// changed is the store's notification that a call was created or changed state.
func (l *liveness) changed(callID, state string) {
	if state == call.Queued.String() {
		return // our own record being created
	}
	l.mu.Lock()
	w, ok := l.watches[callID]
	if !ok {
		l.mu.Unlock()
		return
	}
	if w.done == nil {
		w.seen = true
		l.mu.Unlock()
		return
	}
	delete(l.watches, callID)
	w.timer.Stop()
	l.mu.Unlock()
	l.metrics.liveness.WithLabelValues(w.carrier, "callback").Inc()
	w.done(nil)
}

// expire runs at the deadline. Pub/Sub delivers at most once, so before blaming the carrier
// it reads the call: a state past queued means a callback was stored and only its
// notification was lost. If Redis cannot say, the outcome is not counted: with Redis down the
// webhooks cannot store callbacks either, which is not the carrier's fault.
func (l *liveness) expire(callID string, w *watch) {
	l.mu.Lock()
	if l.watches[callID] != w {
		l.mu.Unlock()
		return
	}
	delete(l.watches, callID)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := l.st.Call(ctx, callID)
	switch {
	case err != nil:
		l.metrics.liveness.WithLabelValues(w.carrier, "unknown").Inc()
		w.done(ErrNotCounted)
	case c.State != call.Queued:
		l.metrics.liveness.WithLabelValues(w.carrier, "callback").Inc()
		w.done(nil)
	default:
		l.metrics.liveness.WithLabelValues(w.carrier, "missing").Inc()
		l.log.Warn("carrier accepted a call and did not call back in time", "carrier", w.carrier, "call", callID)
		w.done(ErrNoCallback)
	}
}

// stop ends every pending check uncounted: the process is going away.
func (l *liveness) stop() {
	l.mu.Lock()
	pending := l.watches
	l.watches, l.stopped = map[string]*watch{}, true
	l.mu.Unlock()
	for _, w := range pending {
		if w.done != nil {
			// A deadline firing now finds its entry gone and leaves done to us.
			w.timer.Stop()
			w.done(ErrNotCounted)
		}
	}
}

// Carrier-level liveness. A call whose callback does not come within the deadline is one
// failure for the breaker, and it takes failure_threshold of them to open it: at 2 calls/s
// that was 12 s after the carrier went silent. But a carrier that has accepted calls and
// delivered nothing at all, for any call, for a whole callback deadline is down, whatever
// the call rate; waiting for more evidence only sends more calls into it. So when an
// accepted call's deadline passes without a callback, the breaker asks whether the carrier
// delivered anything (a callback, a webhook, a TwiML fetch) to any instance during that
// deadline; if not, it opens the carrier's shared breaker at once.
//
// Every instance's webhooks tell their breakers what they heard (Heard, no I/O); each
// instance writes it to Redis at most every heardFlush. Before opening, the check is made a
// second time once every instance has had time to flush, so a callback that arrived elsewhere
// just before the deadline is never missed.

// heardFlush is how often an instance writes to Redis that it heard from a carrier.
const heardFlush = 25 * time.Millisecond

// Heard records that carrier just delivered a request we verified. It does no I/O.
func (b *Breakers) Heard(carrier string) {
	br := b.breaker(carrier)
	br.heardAt.Store(time.Now().UnixMilli())
	br.heardDirty.Store(true)
}

// flushHeard writes what this instance heard to Redis until ctx ends.
func (b *Breakers) flushHeard(ctx context.Context) {
	t := time.NewTicker(heardFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.all.Range(func(id, v any) bool {
			br := v.(*breaker)
			if br.heardDirty.Swap(false) {
				if err := b.st.MarkHeard(ctx, id.(string)); err != nil {
					br.heardDirty.Store(true) // next tick
					b.log.Debug("carrier liveness not shared", "carrier", id, "err", err)
				}
			}
			return true
		})
	}
}

// openIfSilent runs when one of carrier's accepted calls got no callback within its
// deadline. If no instance heard from the carrier within the deadline, the carrier is silent:
// the first look schedules a second, and the second opens the shared breaker. It returns the
// carrier event's detail and whether it opened the breaker.
func (b *Breakers) openIfSilent(ctx context.Context, carrier string, s carrier.BreakerSettings, confirm bool) (string, bool) {
	deadline := s.CallbackDeadline.Std()
	if deadline <= 0 {
		return "", false
	}
	br := b.breaker(carrier)
	if time.Now().UnixMilli()-br.heardAt.Load() < deadline.Milliseconds() {
		return "", false // heard here: not silent
	}
	silent, err := b.st.CarrierSilent(ctx, carrier, deadline)
	if err != nil || !silent {
		return "", false // Redis cannot tell: the per-call failures still count
	}
	if !confirm {
		time.AfterFunc(2*heardFlush, func() {
			b.enqueue(func(ctx context.Context) { b.checkSilent(ctx, carrier, s, true) })
		})
		return "", false
	}
	opened, err := b.st.OpenBreaker(ctx, carrier, s.OpenTimeout.Std(), false)
	if err != nil || !opened {
		return "", false
	}
	b.metrics.silent.WithLabelValues(carrier).Inc()
	b.log.Warn("breaker opened: the carrier accepted calls and delivered no callback at all within the callback deadline",
		"carrier", carrier, "deadline", deadline, "open_for", s.OpenTimeout.Std())
	b.wake()
	return "carrier silent: accepted calls and delivered no callback for " + deadline.String() +
		"; open for " + s.OpenTimeout.Std().String(), true
}
