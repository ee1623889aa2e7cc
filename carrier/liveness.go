package carrier

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/call"
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
