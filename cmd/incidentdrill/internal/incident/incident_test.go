package incident

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
)

// The full timeline is the incident's: 14:47 to 18:04 UTC with 109 minutes degraded, and
// the public timeline's marks fall on window edges.
func TestFullTimelineIsTheIncident(t *testing.T) {
	tl := Full
	if err := tl.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := tl.Degraded(); got != 109 {
		t.Errorf("degraded %v min, want 109", got)
	}
	first, last := tl.Windows[0], tl.Windows[len(tl.Windows)-1]
	if tl.Clock(first.From) != "14:47" || tl.Clock(last.To) != "18:04" || tl.Clock(tl.End) != "18:04" {
		t.Errorf("runs %s-%s, want 14:47-18:04", tl.Clock(first.From), tl.Clock(last.To))
	}
	edges := map[string]bool{}
	for _, w := range tl.Windows {
		edges[tl.Clock(w.From)], edges[tl.Clock(w.To)] = true, true
	}
	for _, mark := range []string{"15:09", "15:52", "16:16", "17:41"} {
		if !edges[mark] {
			t.Errorf("no window starts or ends at %s", mark)
		}
	}
	for _, m := range []float64{tl.RestartAt, tl.RedisStopAt, tl.BurstAt} {
		if m < 0 || m > tl.End {
			t.Errorf("chaos at minute %v is off the timeline", m)
		}
	}
	if tl.At(tl.End) != 197*time.Second {
		t.Errorf("full run %v, want 197s at 1 min = 1 s", tl.At(tl.End))
	}
}

// The short timeline has a window of every kind, each long enough for what it tests.
func TestShortTimelineCoversEveryKind(t *testing.T) {
	tl := Short
	if err := tl.Validate(); err != nil {
		t.Fatal(err)
	}
	kinds := map[Kind]bool{}
	for _, w := range tl.Windows {
		kinds[w.Kind] = true
		if g := Goal(w.Kind, stack.CallbackDeadline); g > 0 && tl.At(w.Minutes()) < g {
			t.Errorf("window %s lasts %v, shorter than its goal %v", w.Name, tl.At(w.Minutes()), g)
		}
	}
	for _, k := range []Kind{Latency, Callbacks, API} {
		if !kinds[k] {
			t.Errorf("no %s window", k)
		}
	}
	if tl.RedisStopFor >= Full.RedisStopFor || tl.RedisStopFor <= 0 {
		t.Errorf("short Redis stop %v, want shorter than the full one", tl.RedisStopFor)
	}
}

func TestWindowFaults(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		want func(k Kind) bool
	}{
		{Callbacks, func(k Kind) bool { f := k.Faults(); return f.CallbackDropRate == 1 && f.RESTErrorRate == 0 }},
		{API, func(k Kind) bool { f := k.Faults(); return f.RESTErrorRate == 1 && f.CallbackDropRate == 0 }},
		{Latency, func(k Kind) bool {
			f := k.Faults()
			return f.RESTLatency < stack.RequestTimeout && f.CallbackDelay < stack.CallbackDeadline && f.RESTErrorRate == 0
		}},
		{Unknown, func(k Kind) bool { f := k.Faults(); return f.RESTErrorRate == 0 && f.CallbackDropRate == 0 }},
	} {
		if !tc.want(tc.k) {
			t.Errorf("%s: faults %+v", tc.k, tc.k.Faults())
		}
	}
}
