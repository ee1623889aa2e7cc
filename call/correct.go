package call

import "time"

// A Telnyx hangup says why a call ended, not whether it was answered (Event.Unanswered): the
// ending is chosen by the call's state when the hangup is applied. Carriers reorder, so the
// call's own answer may arrive after its hangup; the ending chosen then (canceled, no-answer)
// would be wrong, and the final state would depend on arrival order. So an ending chosen
// because the call had not been answered yet is kept correctable: a later answer that
// happened, by the carrier's clock, no later than the end (or when either time is unknown:
// a call is not answered after it ended) moves the ending to the one the hangup gives an
// answered call, once. The store's script applies the same rule (its field ua).

// Correctable is an ending chosen because the call had not been answered yet: what the
// ending event reports for an answered call, and when the call ended by the carrier's clock
// (zero if unknown).
type Correctable struct {
	State State
	At    time.Time
}

// CorrectionDetail is the history detail of the answer that corrected an ending: "answered
// before it ended: ending corrected to completed", then the event's own detail.
func CorrectionDetail(to State, detail string) string {
	d := "answered before it ended: ending corrected to " + to.String()
	if detail != "" {
		d += "; " + detail
	}
	return d
}

// correctable is what applying e, which moved a call from the state before to next, leaves
// to correct: its answered ending if next was chosen because the call was not answered yet.
func (e Event) correctable(before, next State) Correctable {
	if e.Unanswered == Unknown || next != e.Unanswered || before.Rank() >= InProgress.Rank() || e.State == next {
		return Correctable{}
	}
	return Correctable{State: e.State, At: e.At}
}

// corrects says whether e, reporting next, is the answer that corrects c's ending.
func (c Call) corrects(e Event, next State) bool {
	end := c.Correctable
	if end.State == Unknown || !c.State.Terminal() || next.Rank() != InProgress.Rank() {
		return false
	}
	// Carrier times travel in milliseconds, as the store keeps them.
	return e.At.IsZero() || end.At.IsZero() || e.At.UnixMilli() <= end.At.UnixMilli()
}
