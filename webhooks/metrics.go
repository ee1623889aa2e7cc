package webhooks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a carrier request, as counted.
const (
	outcomeStored    = "stored"    // a new event, durable
	outcomeDuplicate = "duplicate" // seen before; acknowledged, nothing changed
	outcomeStale     = "stale"     // new, durable, but arrived after a later state
	outcomeRejected  = "rejected"  // bad signature, malformed, too large, unknown carrier
	outcomeError     = "error"     // storage failed; the carrier got 503
	outcomeForeign   = "foreign"   // verified, but about a call the carrier has no attempt on: 403
	outcomeOrphan    = "orphan"    // from an attempt we gave up on: kept, changed nothing, hung up
)

// Metrics are the webhooks' Prometheus metrics.
type Metrics struct {
	callbacks     *prometheus.CounterVec
	ackLatency    *prometheus.HistogramVec
	signatureFail *prometheus.CounterVec
	foreign       *prometheus.CounterVec
	streams       prometheus.Gauge
	tally         callbackTally
}

// callbackTally counts callbacks for the console's charts (statsdb.Recorder): in memory, no
// I/O, as it is called on every request.
type callbackTally interface {
	Callback(carrier, outcome string)
}

// Tally has every carrier request counted by t too, beside Prometheus. Call it before the
// server serves.
func (m *Metrics) Tally(t callbackTally) *Metrics {
	m.tally = t
	return m
}

// NewMetrics registers the webhooks' metrics on reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_callbacks_total",
			Help: "Carrier webhooks and status callbacks by carrier, route and outcome (stored, duplicate, stale, rejected, error, foreign, orphan).",
		}, []string{"carrier", "route", "outcome"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_callback_ack_seconds",
			Help:    "Time from receiving a carrier callback to acknowledging it (the event is durable by then).",
			Buckets: []float64{.0005, .001, .002, .003, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}, []string{"route"}),
		signatureFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_signature_failures_total",
			Help: "Carrier requests refused because their signature was missing, wrong or stale.",
		}, []string{"carrier", "route"}),
		foreign: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_foreign_events_total",
			Help: "Verified carrier requests refused (403) because they were about a call the carrier has no attempt on.",
		}, []string{"carrier", "route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_media_streams",
			Help: "Carrier media streams open now.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.callbacks, m.ackLatency, m.signatureFail, m.foreign, m.streams)
	}
	return m
}

// observe counts one carrier request. carrier is "unknown" for ids we do not serve, so that
// anyone probing random paths cannot grow the label set.
func (m *Metrics) observe(carrier, route, outcome string, start time.Time) {
	m.callbacks.WithLabelValues(carrier, route, outcome).Inc()
	if m.tally != nil && route != "media" { // a stream's handshake is not a callback
		m.tally.Callback(carrier, outcome)
	}
	if outcome != outcomeRejected {
		m.ackLatency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}
