package reconcile

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the reconciler's Prometheus metrics.
type Metrics struct {
	checks  *prometheus.CounterVec
	lookups *prometheus.CounterVec
	due     prometheus.Gauge
	claimed prometheus.Gauge
	learnt  *prometheus.HistogramVec
}

// NewMetrics registers the metrics on reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_reconcile_checks_total",
			Help: "Reconcile checks by carrier and result: live, ended, advanced, gone, error (a failed or unreadable look-up), " +
				"recent (the call had an event lately: rescheduled without asking), deferred (the carrier's API paused after failures), " +
				"dropped (the call had ended or expired), no-carrier, lost (another instance took the check over), requeued (its lease was too short to run it).",
		}, []string{"carrier", "result"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_reconcile_lookups_total",
			Help: "REST look-ups of a call's status sent to carriers, by carrier.",
		}, []string{"carrier"}),
		due: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_reconcile_due",
			Help: "Reconcile checks due now and not yet claimed by any instance (the backlog).",
		}),
		claimed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_reconcile_claimed",
			Help: "Reconcile checks claimed by some instance and not yet settled.",
		}),
		learnt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_reconcile_ending_lag_seconds",
			Help:    "For calls whose ending the reconciler learnt: time from the carrier's end of the call to our record of it.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 45, 60, 120, 300, 600},
		}, []string{"carrier"}),
	}
	if reg != nil {
		reg.MustRegister(m.checks, m.lookups, m.due, m.claimed, m.learnt)
	}
	return m
}
