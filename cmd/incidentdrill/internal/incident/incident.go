// Package incident is what the incident drill replays: the primary carrier's degraded
// windows of the afternoon of 5 November 2018 (or the short run's stand-ins), the chaos
// around them, and what each kind of window does to the simulated carrier.
package incident

import (
	"fmt"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
)

// Kind is what is wrong with the primary carrier during a window.
type Kind int

const (
	Unknown   Kind = iota
	Latency        // the API and the callbacks are slow; nothing fails
	Callbacks      // callbacks stop; the API still takes calls
	API            // the API answers every request with 503
)

// String names the kind, as the report does.
func (k Kind) String() string {
	switch k {
	case Latency:
		return "latency"
	case Callbacks:
		return "callbacks"
	case API:
		return "api"
	}
	return "unknown"
}

// The faults of each kind, on top of the baseline. Latency stays below the primary's
// request timeout and the callback delay below the callback deadline, so a slow primary is
// still a working one: calls stay on it and pay the latency.
const (
	latencyREST     = 500 * time.Millisecond
	latencyCallback = time.Second
	// BaselineDuplicates of callbacks are sent twice by both carriers all afternoon:
	// carriers retry and duplicate, and the store must not care.
	BaselineDuplicates = 0.02
)

// Faults are the simulator faults for a window of kind k.
func (k Kind) Faults() sim.Faults {
	f := sim.Faults{DuplicateRate: BaselineDuplicates}
	switch k {
	case Latency:
		f.RESTLatency, f.CallbackDelay = latencyREST, latencyCallback
	case Callbacks:
		f.CallbackDropRate = 1
	case API:
		f.RESTErrorRate, f.RESTErrorStatus = 1, 503
	}
	return f
}

// Describe says what the primary does in a window of kind k.
func (k Kind) Describe() string {
	switch k {
	case Latency:
		return fmt.Sprintf("REST +%v, callbacks +%v", latencyREST, latencyCallback)
	case Callbacks:
		return "every callback dropped"
	case API:
		return "REST answers 503"
	}
	return "healthy"
}

// Window is one degraded period of the primary, in minutes of the incident from its first
// alert (14:47 UTC) in the full timeline, or in minutes of the drill in the short one.
type Window struct {
	Name     string
	From, To float64
	Kind     Kind
	Why      string // what the public timeline says, or what the window stands for
}

// Minutes is how long the window lasts.
func (w Window) Minutes() float64 { return w.To - w.From }

// Timeline is what a run replays: the primary's windows and the chaos, on a clock where one
// incident minute takes Scale of wall time.
type Timeline struct {
	Name  string
	Scale time.Duration
	// Incident: minutes map to the clock of 5 November 2018 from 14:47 UTC.
	Incident bool
	Windows  []Window
	End      float64 // minutes; the load runs until then (plus the tail)

	RestartAt    float64       // minutes; restart instance 2 (SIGTERM, drain, start again); <0: off
	RedisStopAt  float64       // minutes; <0: off
	RedisStopFor time.Duration // wall time
	BurstAt      float64       // minutes; <0: off
	BurstFor     time.Duration // wall time
}

// The incident as the platform's status page tells it (status.dixa.io, "Intermittent
// telephony issues"): callback failures and latency from 14:47, subsiding at 15:09; again
// from 15:52; capacity added at 16:16; 301 redirects found at 17:35 and limited at 17:41;
// degraded on and off until 18:04, 109 minutes in all. The page gives the bounds and the
// total, not the shape inside them: the kinds and the split of the second period into
// windows are ours, chosen so that each way a carrier fails Switchboard appears more than
// once and the degraded minutes add up to the page's 109.
var Full = Timeline{
	Name:     "full",
	Scale:    time.Second,
	Incident: true,
	Windows: []Window{
		{"A1", 0, 8, Latency, "14:47 alert: callback latency up"},
		{"A2", 8, 22, Callbacks, "callback failures until 15:09"},
		{"B1", 65, 89, Callbacks, "15:52 failures again, until capacity is added at 16:16"},
		{"B2", 98, 116, API, "the carrier cannot take calls"},
		{"B3", 128, 140, Latency, "latency up again"},
		{"B4", 150, 174, Callbacks, "the 301 redirect storm, until redirects are limited at 17:41"},
		{"B5a", 184, 187, API, "residual flapping until 18:04"},
		{"B5b", 189, 192, API, "residual flapping"},
		{"B5c", 194, 197, API, "residual flapping"},
	},
	End:          197,
	RestartAt:    77, // 16:04, inside B1: the new process must learn the open breaker from Redis
	RedisStopAt:  28, // 15:15, while the carrier is well: only our own fault is in play
	RedisStopFor: 10 * time.Second,
	BurstAt:      50, // 15:37, seasonal load
	BurstFor:     3 * time.Second,
}

// The short timeline has one window of each kind the full one has, each long enough for
// what it tests (a callback window must outlast the callback deadline plus the breaker's
// count), and the same chaos, shorter: it runs in CI.
var Short = Timeline{
	Name:  "short",
	Scale: time.Second,
	Windows: []Window{
		{"A2", 0, 6, Callbacks, "stands for A2, B1, B4"},
		{"B2", 16, 20, API, "stands for B2"},
		{"B3", 27, 31, Latency, "stands for A1, B3"},
		{"B5a", 34, 36, API, "stands for B5"},
		{"B5b", 37, 39, API, "stands for B5"},
	},
	End:          39,
	RestartAt:    17,
	RedisStopAt:  10,
	RedisStopFor: 3 * time.Second,
	BurstAt:      22,
	BurstFor:     2 * time.Second,
}

// Degraded is the total length of the windows, in minutes.
func (t Timeline) Degraded() float64 {
	var m float64
	for _, w := range t.Windows {
		m += w.Minutes()
	}
	return m
}

// At is the wall-clock offset of minute m from the start of the timeline.
func (t Timeline) At(m float64) time.Duration { return time.Duration(m * float64(t.Scale)) }

// Clock names minute m: the UTC time of the incident, or the drill's offset.
func (t Timeline) Clock(m float64) string {
	if t.Incident {
		start := time.Date(2018, 11, 5, 14, 47, 0, 0, time.UTC)
		return start.Add(time.Duration(m * float64(time.Minute))).Format("15:04")
	}
	return "t+" + t.At(m).String()
}

// Validate checks that windows are ordered and do not overlap, so that at any moment at most
// one is in force.
func (t Timeline) Validate() error {
	last := 0.0
	for i, w := range t.Windows {
		if w.To <= w.From || w.From < last || w.Kind == Unknown {
			return fmt.Errorf("Timeline %s: Window %d (%s) is empty, out of order or of no Kind", t.Name, i, w.Name)
		}
		last = w.To
	}
	if last > t.End {
		return fmt.Errorf("Timeline %s: windows run past the end", t.Name)
	}
	return nil
}

// Goal is how soon after a window starts no new call may go to the primary; 0 when the
// window asks for no routing around (a slow carrier still carries calls).
func Goal(k Kind, callbackDeadline time.Duration) time.Duration {
	switch k {
	case API:
		return time.Second
	case Callbacks:
		return callbackDeadline + 2*time.Second
	}
	return 0
}
