package call

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestStateNamesRoundTrip(t *testing.T) {
	for _, s := range States {
		got, err := ParseState(s.String())
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v; want %v", s.String(), got, err, s)
		}
	}
	if _, err := ParseState("unknown"); err == nil {
		t.Error(`ParseState("unknown") succeeded; the zero state must not parse as a real one`)
	}
	if _, err := ParseState("answered"); err == nil {
		t.Error(`ParseState("answered") succeeded`)
	}
	if State(0).String() != "unknown" || State(42).String() != "unknown" {
		t.Error("out-of-range states must print as unknown")
	}
}

func TestAdvances(t *testing.T) {
	tests := []struct {
		current, next State
		want          bool
	}{
		{Unknown, Queued, true},
		{Queued, Ringing, true},
		{Ringing, Initiated, false},
		{Ringing, Ringing, false},
		{Ringing, InProgress, true},
		{InProgress, Completed, true},
		{Ringing, Busy, true},
		{Queued, Canceled, true},
		{Completed, Busy, false},
		{Busy, Completed, false},
		{Completed, InProgress, false},
		{InProgress, Unknown, false},
	}
	for _, tt := range tests {
		if got := Advances(tt.current, tt.next); got != tt.want {
			t.Errorf("Advances(%v, %v) = %v, want %v", tt.current, tt.next, got, tt.want)
		}
	}
}

func TestApplyKeepsEveryDistinctEvent(t *testing.T) {
	t0 := time.Date(2018, 11, 5, 14, 47, 0, 0, time.UTC)
	var c Call
	var out Outcome
	c, out = Apply(c, Event{ID: "e2", CallID: "c1", State: Ringing}, t0)
	if out != Advanced || c.State != Ringing {
		t.Fatalf("first event: %v %v", out, c.State)
	}
	c, out = Apply(c, Event{ID: "e1", State: Initiated}, t0.Add(time.Second))
	if out != Recorded || c.State != Ringing {
		t.Fatalf("stale event moved the call: %v %v", out, c.State)
	}
	c, out = Apply(c, Event{ID: "e1", State: Initiated}, t0.Add(2*time.Second))
	if out != Duplicate || len(c.History) != 2 {
		t.Fatalf("duplicate: %v, history %d", out, len(c.History))
	}
	c, _ = Apply(c, Event{ID: "e3", State: Busy, Detail: "user_busy"}, t0.Add(3*time.Second))
	c, out = Apply(c, Event{ID: "e4", State: Completed}, t0.Add(4*time.Second))
	if out != Recorded || c.State != Busy {
		t.Fatalf("terminal state did not absorb: %v %v", out, c.State)
	}
	if got := len(c.History); got != 4 {
		t.Fatalf("history has %d entries, want 4", got)
	}
	if c.History[2].Detail != "user_busy" || !c.History[2].Changed || c.History[3].Changed {
		t.Fatalf("history entries wrong: %+v", c.History)
	}
}

// lifecycle draws the events one real call produces: a path forward through the states,
// ending in exactly one terminal state, plus events that report no state.
func lifecycle(t *rapid.T) []Event {
	path := []State{Queued, Initiated, Ringing}
	if rapid.Bool().Draw(t, "answered") {
		path = append(path, InProgress, Completed)
	} else {
		path = append(path, rapid.SampledFrom([]State{Busy, Failed, NoAnswer, Canceled}).Draw(t, "ending"))
	}
	// The ending may be a Telnyx hangup, which reports completed if the call was answered and
	// its cause's ending if not; its answer may arrive after it.
	telnyx := rapid.Bool().Draw(t, "telnyx")
	timed := rapid.Bool().Draw(t, "timed")
	// A carrier may skip states (no ringing callback requested, a failed dial that never rang).
	var events []Event
	for i, s := range path {
		if s.Terminal() || rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("keep%d", i)) > 0 {
			e := Event{ID: fmt.Sprintf("ev-%d-%s", i, s), CallID: "c", State: s}
			if timed {
				e.At = time.Unix(100, 0).Add(time.Duration(i) * time.Second)
			}
			if s.Terminal() && telnyx {
				e.ID, e.State, e.Unanswered = fmt.Sprintf("hangup-%d", i), Completed, s
				if s == Completed { // answered: the cause's ending if it had not been
					e.Unanswered = rapid.SampledFrom([]State{NoAnswer, Canceled, Failed}).Draw(t, "unanswered")
				}
			}
			events = append(events, e)
		}
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "notes") {
		events = append(events, Event{ID: fmt.Sprintf("note-%d", i), CallID: "c"})
	}
	return events
}

func fold(events []Event) Call {
	var c Call
	t0 := time.Unix(0, 0)
	for i, e := range events {
		c, _ = Apply(c, e, t0.Add(time.Duration(i)*time.Millisecond))
	}
	return c
}

// entrySet is the history as a set of event ids and the states they reported. A Telnyx
// hangup's entry keeps the ending it reported on arrival (a late answer corrects the call,
// not that entry), so only its id counts.
func entrySet(c Call) []string {
	var ids []string
	for _, h := range c.History {
		if strings.HasPrefix(h.EventID, "hangup-") {
			ids = append(ids, h.EventID)
			continue
		}
		ids = append(ids, h.EventID+"/"+h.State.String())
	}
	slices.Sort(ids)
	return ids
}

// TestApplyIsOrderAndDuplicateTolerant is the property the whole product leans on: the same
// events in any order and any multiplicity give the same final state and the same history.
func TestApplyIsOrderAndDuplicateTolerant(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := lifecycle(t)
		want := fold(events)

		// Deliver each event one or more times, in a random order.
		var delivered []Event
		for i, e := range events {
			for range rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("copies%d", i)) {
				delivered = append(delivered, e)
			}
		}
		delivered = rapid.Permutation(delivered).Draw(t, "arrival")
		got := fold(delivered)

		if got.State != want.State {
			t.Fatalf("final state %v, in-order %v (arrival %v)", got.State, want.State, delivered)
		}
		if !slices.Equal(entrySet(got), entrySet(want)) {
			t.Fatalf("history %v, in-order %v", entrySet(got), entrySet(want))
		}
		changed := 0
		for _, h := range got.History {
			if h.Changed {
				changed++
				if h.State == Unknown {
					t.Fatalf("an event that reports no state changed the call: %+v", h)
				}
			}
		}
		if changed == 0 || changed > len(events) {
			t.Fatalf("%d entries changed the state", changed)
		}
	})
}

// TestApplyUnansweredEnding: an ending that depends on whether the call was answered reports
// Completed after an answer and its Unanswered state before one, in the history too.
func TestApplyUnansweredEnding(t *testing.T) {
	hangup := Event{ID: "hangup", CallID: "c", State: Completed, Unanswered: Canceled}
	for _, tc := range []struct {
		before []State
		want   State
	}{
		{nil, Canceled},
		{[]State{Initiated}, Canceled},
		{[]State{Initiated, Ringing}, Canceled},
		{[]State{Initiated, InProgress}, Completed},
		{[]State{Initiated, Busy}, Busy}, // already ended: nothing replaces the first ending
	} {
		var c Call
		for i, s := range tc.before {
			c, _ = Apply(c, Event{ID: fmt.Sprint("e", i), CallID: "c", State: s}, time.Unix(0, 0))
		}
		c, _ = Apply(c, hangup, time.Unix(1, 0))
		if c.State != tc.want {
			t.Errorf("after %v: state %v, want %v", tc.before, c.State, tc.want)
		}
		last := c.History[len(c.History)-1]
		if wantEntry := hangup.ReportedState(stateBefore(tc.before)); last.State != wantEntry {
			t.Errorf("after %v: history entry %v, want %v", tc.before, last.State, wantEntry)
		}
	}
}

// TestLateAnswerCorrectsAnUnansweredEnding: a hangup applied before its call's answer ends
// the call with its unanswered ending; the answer, if it happened no later than the end (or
// a time is unknown), corrects the ending to completed, once. An answer stamped after the end
// changes nothing.
func TestLateAnswerCorrectsAnUnansweredEnding(t *testing.T) {
	end := time.Unix(100, 0)
	for _, tc := range []struct {
		name          string
		hangAt, ansAt time.Time
		want          State
	}{
		{"answer before the end", end, end.Add(-time.Second), Completed},
		{"answer at the end", end, end, Completed},
		{"answer time unknown", end, time.Time{}, Completed},
		{"end time unknown", time.Time{}, end, Completed},
		{"answer after the end", end, end.Add(time.Second), NoAnswer},
	} {
		c, _ := Apply(Call{}, Event{ID: "i", CallID: "c", State: Initiated}, end)
		c, _ = Apply(c, Event{ID: "h", CallID: "c", State: Completed, Unanswered: NoAnswer, At: tc.hangAt}, end)
		if c.State != NoAnswer {
			t.Fatalf("%s: after the hangup %v", tc.name, c.State)
		}
		c, out := Apply(c, Event{ID: "a", CallID: "c", State: InProgress, At: tc.ansAt}, end)
		last := c.History[len(c.History)-1]
		if c.State != tc.want || (out == Advanced) != (tc.want == Completed) || last.Changed != (out == Advanced) {
			t.Errorf("%s: %v (%v, entry %+v), want %v", tc.name, c.State, out, last, tc.want)
		}
		if tc.want == Completed && !strings.HasPrefix(last.Detail, "answered before it ended") {
			t.Errorf("%s: correction's detail %q", tc.name, last.Detail)
		}
		// Once corrected, a second answer (another event id) changes nothing more.
		if _, out := Apply(c, Event{ID: "a2", CallID: "c", State: InProgress}, end); tc.want == Completed && out != Recorded {
			t.Errorf("%s: a second answer: %v", tc.name, out)
		}
	}
}

func stateBefore(path []State) State {
	var cur State
	for _, s := range path {
		if Advances(cur, s) {
			cur = s
		}
	}
	return cur
}

func TestSourceIsKeptInHistoryAndReadsAsItsName(t *testing.T) {
	c, _ := Apply(Call{}, Event{ID: "x", CallID: "CL1", State: Completed, Source: SourceReconciled}, time.Now())
	b, err := json.Marshal(c.History[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"source":"reconciled"`) {
		t.Fatalf("entry JSON %s has no reconciled source", b)
	}
	for _, s := range []Source{SourceCallback, SourceAPI, SourceReconciled, SourceSwitchboard} {
		var back Source
		if err := back.UnmarshalText([]byte(s.String())); err != nil || back != s {
			t.Fatalf("%v round trip: %v %v", s, back, err)
		}
	}
	if _, err := ParseSource("carrier-pigeon"); err == nil {
		t.Fatal("an unknown source parsed")
	}
}

// A call taken by one agent and transferred to another names both: the first stays its Agent,
// every agent is in Agents once, in order, and each of them handled it.
func TestAgentsOfATransferredCall(t *testing.T) {
	now := time.Now()
	var c Call
	for i, e := range []Event{
		{ID: "in", CallID: "CL1", State: Ringing, Direction: Inbound, Carrier: "tw"},
		{ID: "a1", CallID: "CL1", Agent: "ann"},
		{ID: "b1", CallID: "CL1", Agent: "bob"},
		{ID: "a2", CallID: "CL1", Agent: "ann"},
	} {
		if c, _ = Apply(c, e, now); c.CreatedAt.IsZero() {
			t.Fatalf("event %d: no record", i)
		}
	}
	if c.Agent != "ann" || !slices.Equal(c.Agents, []string{"ann", "bob"}) {
		t.Fatalf("agent %q, agents %v; want ann, [ann bob]", c.Agent, c.Agents)
	}
	if !c.HandledBy("ann") || !c.HandledBy("bob") || c.HandledBy("cat") || c.HandledBy("") {
		t.Fatal("HandledBy disagrees with the agents")
	}
}
