package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are outbound placement's Prometheus metrics.
type Metrics struct {
	attempts        *prometheus.CounterVec
	failovers       *prometheus.CounterVec
	liveness        *prometheus.CounterVec
	setup           *prometheus.HistogramVec
	breakerState    *prometheus.GaugeVec
	droppedOutcomes prometheus.Counter
	actions         *prometheus.CounterVec
	actionBacklog   prometheus.Gauge
	silent          *prometheus.CounterVec
	resends         *prometheus.CounterVec
	orphans         *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_carrier_attempts_total",
			Help: "Attempts to place a call, by carrier and outcome (accepted, carrier-fault, final).",
		}, []string{"carrier", "outcome"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_failovers_total",
			Help: "Calls moved on from a carrier to the next one after a carrier fault, by the carrier that failed.",
		}, []string{"carrier"}),
		liveness: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_callback_liveness_total",
			Help: "Accepted calls by whether their carrier called back within its deadline (callback, missing, unknown).",
		}, []string{"carrier", "result"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_call_setup_seconds",
			Help:    "Time from a placement request to the first carrier that accepted, by whether the call failed over.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10},
		}, []string{"failed_over"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_breaker_state",
			Help: "Each carrier's breaker as this instance applies it: 0 closed, 1 half-open, 2 open (forced open included).",
		}, []string{"carrier"}),
		droppedOutcomes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_breaker_outcomes_dropped_total",
			Help: "Outcomes not shared with the fleet because the queue to Redis was full.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_carrier_actions_total",
			Help: "Attempts at carrier actions owed after an acknowledgement (answer, hangup, reject, hangup-orphan), by carrier, kind and result (done, retry, failed, lease-lost).",
		}, []string{"carrier", "kind", "result"}),
		actionBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_carrier_actions_backlog",
			Help: "Carrier actions waiting or running, across every instance, as this instance last counted them.",
		}),
		silent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_carrier_silent_total",
			Help: "Times a carrier was found silent: it accepted calls and delivered no callback at all for its callback deadline.",
		}, []string{"carrier"}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_carrier_resends_total",
			Help: "Create-call requests sent again, unchanged, to the same carrier after an answer that left the call maybe created (Telnyx drops the repeat by command_id).",
		}, []string{"carrier"}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_orphan_hangups_total",
			Help: "Calls a carrier created for an attempt we had given up on, counted when their hang-up job completes (hung-up) or is given up (failed), by carrier and how they were found (callback, lookup, early).",
		}, []string{"carrier", "via", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.failovers, m.liveness, m.setup, m.breakerState, m.droppedOutcomes,
			m.actions, m.actionBacklog, m.silent, m.resends, m.orphans)
	}
	return m
}
