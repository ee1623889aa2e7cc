package reconcile

import (
	"time"

	"github.com/switchboard/switchboard/carrier"
)

// lookupHealth is what one instance knows of a carrier's status API and breaker.
type lookupHealth struct {
	failures    int
	pausedUntil time.Time
	lastLog     time.Time
	suppressed  int
	notClosed   bool // the breaker was not closed at the last look
}

func (r *Reconciler) healthOf(carrier string) *lookupHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.health[carrier]
	if !ok {
		h = &lookupHealth{}
		r.health[carrier] = h
	}
	return h
}

func (r *Reconciler) pausedUntil(carrier string) time.Time {
	h := r.healthOf(carrier)
	r.mu.Lock()
	defer r.mu.Unlock()
	return h.pausedUntil
}

// logEvery bounds how often a carrier's failing look-ups are logged.
const logEvery = time.Minute

// failed pauses a carrier's checks after its API failed, longer with each failure in a row,
// and logs the failure at most once a minute per carrier. It returns when the check is due.
func (r *Reconciler) failed(id string, st carrier.CallStatus) time.Time {
	h := r.healthOf(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	pause := r.d.ErrorPause << min(h.failures, 16)
	pause = min(pause, r.d.MaxBackoff)
	h.failures++
	if until := now.Add(pause); until.After(h.pausedUntil) {
		h.pausedUntil = until
	}
	if now.Sub(h.lastLog) >= logEvery {
		r.d.Log.Warn("reconcile: carrier's call-status API failed; its checks wait", "carrier", id,
			"reason", st.Reason, "detail", st.Detail, "pause", pause, "failures_not_logged", h.suppressed)
		h.lastLog, h.suppressed = now, 0
	} else {
		h.suppressed++
	}
	return h.pausedUntil
}

func (r *Reconciler) recovered(carrier string) {
	h := r.healthOf(carrier)
	r.mu.Lock()
	defer r.mu.Unlock()
	h.failures = 0
	h.pausedUntil = time.Time{}
}
