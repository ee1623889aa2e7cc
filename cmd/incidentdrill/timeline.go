package main

import (
	"fmt"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
)

// kind is what is wrong with the primary carrier during a window.
type kind int

const (
	kindUnknown   kind = iota
	kindLatency        // the API and the callbacks are slow; nothing fails
	kindCallbacks      // callbacks stop; the API still takes calls
	kindAPI            // the API answers every request with 503
)

func (k kind) String() string {
	switch k {
	case kindLatency:
		return "latency"
	case kindCallbacks:
		return "callbacks"
	case kindAPI:
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
	// baselineDuplicates of callbacks are sent twice by both carriers all afternoon:
	// carriers retry and duplicate, and the store must not care.
	baselineDuplicates = 0.02
)

// faults are the simulator faults for a window of kind k.
func (k kind) faults() sim.Faults {
	f := sim.Faults{DuplicateRate: baselineDuplicates}
	switch k {
	case kindLatency:
		f.RESTLatency, f.CallbackDelay = latencyREST, latencyCallback
	case kindCallbacks:
		f.CallbackDropRate = 1
	case kindAPI:
		f.RESTErrorRate, f.RESTErrorStatus = 1, 503
	}
	return f
}

// describe says what the primary does in a window of kind k.
func (k kind) describe() string {
	switch k {
	case kindLatency:
		return fmt.Sprintf("REST +%v, callbacks +%v", latencyREST, latencyCallback)
	case kindCallbacks:
		return "every callback dropped"
	case kindAPI:
		return "REST answers 503"
	}
	return "healthy"
}

// window is one degraded period of the primary, in minutes of the incident from its first
// alert (14:47 UTC) in the full timeline, or in minutes of the drill in the short one.
type window struct {
	name     string
	from, to float64
	kind     kind
	why      string // what the public timeline says, or what the window stands for
}

func (w window) minutes() float64 { return w.to - w.from }

// timeline is what a run replays: the primary's windows and the chaos, on a clock where one
// incident minute takes scale of wall time.
type timeline struct {
	name  string
	scale time.Duration
	// incident: minutes map to the clock of 5 November 2018 from 14:47 UTC.
	incident bool
	windows  []window
	end      float64 // minutes; the load runs until then (plus the tail)

	restartAt    float64       // minutes; restart instance 2 (SIGTERM, drain, start again); <0: off
	redisStopAt  float64       // minutes; <0: off
	redisStopFor time.Duration // wall time
	burstAt      float64       // minutes; <0: off
	burstFor     time.Duration // wall time
}

// The incident as the platform's status page tells it (status.dixa.io, "Intermittent
// telephony issues"): callback failures and latency from 14:47, subsiding at 15:09; again
// from 15:52; capacity added at 16:16; 301 redirects found at 17:35 and limited at 17:41;
// degraded on and off until 18:04, 109 minutes in all. The page gives the bounds and the
// total, not the shape inside them: the kinds and the split of the second period into
// windows are ours, chosen so that each way a carrier fails Switchboard appears more than
// once and the degraded minutes add up to the page's 109.
var fullTimeline = timeline{
	name:     "full",
	scale:    time.Second,
	incident: true,
	windows: []window{
		{"A1", 0, 8, kindLatency, "14:47 alert: callback latency up"},
		{"A2", 8, 22, kindCallbacks, "callback failures until 15:09"},
		{"B1", 65, 89, kindCallbacks, "15:52 failures again, until capacity is added at 16:16"},
		{"B2", 98, 116, kindAPI, "the carrier cannot take calls"},
		{"B3", 128, 140, kindLatency, "latency up again"},
		{"B4", 150, 174, kindCallbacks, "the 301 redirect storm, until redirects are limited at 17:41"},
		{"B5a", 184, 187, kindAPI, "residual flapping until 18:04"},
		{"B5b", 189, 192, kindAPI, "residual flapping"},
		{"B5c", 194, 197, kindAPI, "residual flapping"},
	},
	end:          197,
	restartAt:    77, // 16:04, inside B1: the new process must learn the open breaker from Redis
	redisStopAt:  28, // 15:15, while the carrier is well: only our own fault is in play
	redisStopFor: 10 * time.Second,
	burstAt:      50, // 15:37, seasonal load
	burstFor:     3 * time.Second,
}

// The short timeline has one window of each kind the full one has, each long enough for
// what it tests (a callback window must outlast the callback deadline plus the breaker's
// count), and the same chaos, shorter: it runs in CI.
var shortTimeline = timeline{
	name:  "short",
	scale: time.Second,
	windows: []window{
		{"A2", 0, 6, kindCallbacks, "stands for A2, B1, B4"},
		{"B2", 16, 20, kindAPI, "stands for B2"},
		{"B3", 27, 31, kindLatency, "stands for A1, B3"},
		{"B5a", 34, 36, kindAPI, "stands for B5"},
		{"B5b", 37, 39, kindAPI, "stands for B5"},
	},
	end:          39,
	restartAt:    17,
	redisStopAt:  10,
	redisStopFor: 3 * time.Second,
	burstAt:      22,
	burstFor:     2 * time.Second,
}

// degraded is the total length of the windows, in minutes.
func (t timeline) degraded() float64 {
	var m float64
	for _, w := range t.windows {
		m += w.minutes()
	}
	return m
}

// at is the wall-clock offset of minute m from the start of the timeline.
func (t timeline) at(m float64) time.Duration { return time.Duration(m * float64(t.scale)) }

// clock names minute m: the UTC time of the incident, or the drill's offset.
func (t timeline) clock(m float64) string {
	if t.incident {
		start := time.Date(2018, 11, 5, 14, 47, 0, 0, time.UTC)
		return start.Add(time.Duration(m * float64(time.Minute))).Format("15:04")
	}
	return "t+" + t.at(m).String()
}

// validate checks that windows are ordered and do not overlap, so that at any moment at most
// one is in force.
func (t timeline) validate() error {
	last := 0.0
	for i, w := range t.windows {
		if w.to <= w.from || w.from < last || w.kind == kindUnknown {
			return fmt.Errorf("timeline %s: window %d (%s) is empty, out of order or of no kind", t.name, i, w.name)
		}
		last = w.to
	}
	if last > t.end {
		return fmt.Errorf("timeline %s: windows run past the end", t.name)
	}
	return nil
}

// goal is how soon after a window starts no new call may go to the primary; 0 when the
// window asks for no routing around (a slow carrier still carries calls).
func goal(k kind, callbackDeadline time.Duration) time.Duration {
	switch k {
	case kindAPI:
		return time.Second
	case kindCallbacks:
		return callbackDeadline + 2*time.Second
	}
	return 0
}
