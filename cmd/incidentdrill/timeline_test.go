package main

import (
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"testing"
	"time"
)

// The full timeline is the incident's: 14:47 to 18:04 UTC with 109 minutes degraded, and
// the public timeline's marks fall on window edges.
func TestFullTimelineIsTheIncident(t *testing.T) {
	tl := fullTimeline
	if err := tl.validate(); err != nil {
		t.Fatal(err)
	}
	if got := tl.degraded(); got != 109 {
		t.Errorf("degraded %v min, want 109", got)
	}
	first, last := tl.windows[0], tl.windows[len(tl.windows)-1]
	if tl.clock(first.from) != "14:47" || tl.clock(last.to) != "18:04" || tl.clock(tl.end) != "18:04" {
		t.Errorf("runs %s-%s, want 14:47-18:04", tl.clock(first.from), tl.clock(last.to))
	}
	edges := map[string]bool{}
	for _, w := range tl.windows {
		edges[tl.clock(w.from)], edges[tl.clock(w.to)] = true, true
	}
	for _, mark := range []string{"15:09", "15:52", "16:16", "17:41"} {
		if !edges[mark] {
			t.Errorf("no window starts or ends at %s", mark)
		}
	}
	for _, m := range []float64{tl.restartAt, tl.redisStopAt, tl.burstAt} {
		if m < 0 || m > tl.end {
			t.Errorf("chaos at minute %v is off the timeline", m)
		}
	}
	if tl.at(tl.end) != 197*time.Second {
		t.Errorf("full run %v, want 197s at 1 min = 1 s", tl.at(tl.end))
	}
}

// The short timeline has a window of every kind, each long enough for what it tests.
func TestShortTimelineCoversEveryKind(t *testing.T) {
	tl := shortTimeline
	if err := tl.validate(); err != nil {
		t.Fatal(err)
	}
	kinds := map[kind]bool{}
	for _, w := range tl.windows {
		kinds[w.kind] = true
		if g := goal(w.kind, stack.CallbackDeadline); g > 0 && tl.at(w.minutes()) < g {
			t.Errorf("window %s lasts %v, shorter than its goal %v", w.name, tl.at(w.minutes()), g)
		}
	}
	for _, k := range []kind{kindLatency, kindCallbacks, kindAPI} {
		if !kinds[k] {
			t.Errorf("no %s window", k)
		}
	}
	if tl.redisStopFor >= fullTimeline.redisStopFor || tl.redisStopFor <= 0 {
		t.Errorf("short Redis stop %v, want shorter than the full one", tl.redisStopFor)
	}
}

func TestWindowFaults(t *testing.T) {
	for _, tc := range []struct {
		k    kind
		want func(k kind) bool
	}{
		{kindCallbacks, func(k kind) bool { f := k.faults(); return f.CallbackDropRate == 1 && f.RESTErrorRate == 0 }},
		{kindAPI, func(k kind) bool { f := k.faults(); return f.RESTErrorRate == 1 && f.CallbackDropRate == 0 }},
		{kindLatency, func(k kind) bool {
			f := k.faults()
			return f.RESTLatency < stack.RequestTimeout && f.CallbackDelay < stack.CallbackDeadline && f.RESTErrorRate == 0
		}},
		{kindUnknown, func(k kind) bool { f := k.faults(); return f.RESTErrorRate == 0 && f.CallbackDropRate == 0 }},
	} {
		if !tc.want(tc.k) {
			t.Errorf("%s: faults %+v", tc.k, tc.k.faults())
		}
	}
}

// The load's numbers follow the simulator's rule: 97 in 100 answer, 2 are busy, 1 invalid.
func TestNumbers(t *testing.T) {
	count := map[destination]int{}
	for i := range 1000 {
		n, d := number(i)
		count[d]++
		last := n[len(n)-1]
		if ok := map[destination]string{answers: "0", busy: "1", invalid: "3"}[d]; string(last) != ok {
			t.Fatalf("number %d: %s is %s", i, n, d)
		}
	}
	if count[answers] != 970 || count[busy] != 20 || count[invalid] != 10 {
		t.Errorf("destinations %v", count)
	}
}
