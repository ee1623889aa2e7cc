package call

import (
	"slices"
	"time"
)

// Call is one telephone call as Switchboard knows it: who, which carrier, where it stands,
// and every event received about it.
type Call struct {
	ID            string    `json:"id"`
	State         State     `json:"state"`
	Direction     Direction `json:"direction"`
	From          string    `json:"from"`
	To            string    `json:"to"`
	Carrier       string    `json:"carrier"`
	CarrierCallID string    `json:"carrier_call_id"`
	Agent         string    `json:"agent"`
	// Agents are every agent that took or joined the call, in order (Agent is the first): the
	// target of a transfer, a consulted agent. Each of them may read the call and wrap it up.
	Agents    []string  `json:"agents,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	History   []Entry   `json:"history"`
	// WrapUp is what the agent wrote about the call when it was over (notes, disposition);
	// zero until someone saves it.
	WrapUp
	// Claims are the carriers with an attempt on the call (see Claim). The store keeps them
	// in the record but does not read them back.
	Claims map[string]Claim `json:"-"`
	// Correctable is set while the ending was chosen because the call had not been answered
	// (see Correctable); the store keeps it in the record but does not read it back.
	Correctable Correctable `json:"-"`
}

// Event is one thing a carrier (or Switchboard itself) reports about a call. Carriers retry,
// duplicate and reorder events; ID is what makes a retry recognisable as the same event.
type Event struct {
	// ID is unique per distinct event: for Twilio the CallSid with the SequenceNumber and
	// status, for Telnyx the webhook's data.id. A second event with the same ID is a duplicate.
	ID string
	// CallID is our call id when the event carries it; empty when only the carrier's id is known.
	CallID        string
	Carrier       string
	CarrierCallID string
	// State is the state the event reports; Unknown for events that report none (a failed
	// attempt on one carrier, a DTMF digit): they go into the history and change nothing.
	State State
	// Unanswered, when not Unknown, is the state the event reports instead of State if the
	// call was never answered (had not reached InProgress) when the event is applied. A
	// Telnyx hangup says why a call ended but not whether it was answered: normal_clearing
	// ends an answered call completed, and an unanswered one canceled or not answered. The
	// choice is made where the call's state is known: here and, atomically, in the store.
	Unanswered State
	// Direction, From, To and Agent fill in a call record that does not have them yet.
	Direction Direction
	From      string
	To        string
	Agent     string
	// At is when the event happened by the carrier's clock.
	At time.Time
	// Detail is short free text kept in the history: a hangup cause, a SIP code, why an
	// attempt failed.
	Detail string
	// Attempt is the attempt of ours the carrier's request names (Twilio callback URLs carry
	// it as sb_attempt); 0 when it names none.
	Attempt int
	// Source says who reported the event; the history keeps it.
	Source Source
}

// Entry is an event as kept in a call's history, in arrival order.
type Entry struct {
	EventID    string    `json:"event_id"`
	State      State     `json:"state,omitzero"`
	Carrier    string    `json:"carrier,omitempty"`
	At         time.Time `json:"at,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
	Changed    bool      `json:"changed"`
	Detail     string    `json:"detail,omitempty"`
	Source     Source    `json:"source,omitzero"`
}

// Outcome says what applying an event did.
type Outcome int8

const (
	// Recorded: a new event that went into the history without moving the state (it was
	// stale, arrived after the end, or reported no state).
	Recorded Outcome = iota + 1
	// Advanced: a new event that moved the call forward.
	Advanced
	// Duplicate: an event already seen; nothing changed.
	Duplicate
	// Refused: the event's carrier has no attempt on the call; nothing was kept.
	Refused
	// Orphaned: a new event from an attempt we gave up on (the carrier created the call
	// after all). It went into the history and changed nothing; that carrier call should be
	// hung up.
	Orphaned
)

func (o Outcome) String() string {
	switch o {
	case Recorded:
		return "recorded"
	case Advanced:
		return "advanced"
	case Duplicate:
		return "duplicate"
	case Refused:
		return "refused"
	case Orphaned:
		return "orphaned"
	}
	return "unknown"
}

// Advances reports whether an event reporting next moves a call that stands at current.
// A call only moves forward in rank, and a terminal state absorbs everything after it.
// This is the whole transition rule; the store's Lua script applies the same rule to ranks
// it is handed, so the two cannot disagree on a state's place.
func Advances(current, next State) bool {
	if next == Unknown || current.Terminal() {
		return false
	}
	return next.Rank() > current.Rank()
}

// Apply folds e into c as of receivedAt and returns the new call and what happened. It is
// pure: the same events in any order and any multiplicity give the same final state and the
// same set of history entries (an ending chosen because the call was not answered yet keeps,
// in its entry, the ending it chose; a late answer corrects the call, see Correctable).
//
// An event from a carrier with no claim on the call is Refused; one from an abandoned
// attempt is kept as Orphaned and changes nothing else. The carrier of the event that
// creates a call claims it.
func Apply(c Call, e Event, receivedAt time.Time) (Call, Outcome) {
	standing := c.standingOf(e)
	if standing == foreign {
		return c, Refused
	}
	if slices.ContainsFunc(c.History, func(h Entry) bool { return h.EventID == e.ID }) {
		return c, Duplicate
	}
	if c.ID == "" {
		c.ID = e.CallID
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = receivedAt
		if e.Carrier != "" {
			c = c.Claim(e.Carrier, e.Attempt)
		}
	}
	if standing == orphan {
		c.UpdatedAt = receivedAt
		c.History = append(slices.Clip(c.History), Entry{
			EventID: e.ID, State: e.State, Carrier: e.Carrier, At: e.At,
			ReceivedAt: receivedAt, Detail: OrphanDetail(c.orphanAttempt(e), e.Detail), Source: e.Source,
		})
		return c, Orphaned
	}
	fill(&c.Carrier, e.Carrier)
	fill(&c.CarrierCallID, e.CarrierCallID)
	fill(&c.From, e.From)
	fill(&c.To, e.To)
	fill(&c.Agent, e.Agent)
	if e.Agent != "" && !slices.Contains(c.Agents, e.Agent) {
		c.Agents = append(slices.Clip(c.Agents), e.Agent)
	}
	if c.Direction == UnknownDirection {
		c.Direction = e.Direction
	}
	next := e.ReportedState(c.State)
	changed := Advances(c.State, next)
	detail := e.Detail
	switch {
	case changed:
		c.Correctable = e.correctable(c.State, next)
		c.State = next
	case c.corrects(e, next):
		changed = true
		c.State, c.Correctable = c.Correctable.State, Correctable{}
		detail = CorrectionDetail(c.State, detail)
	}
	c.UpdatedAt = receivedAt
	c.History = append(slices.Clip(c.History), Entry{
		EventID: e.ID, State: next, Carrier: e.Carrier, At: e.At,
		ReceivedAt: receivedAt, Changed: changed, Detail: detail, Source: e.Source,
	})
	if changed {
		return c, Advanced
	}
	return c, Recorded
}

// ReportedState is the state e reports about a call that stands at current: Unanswered if
// it has one and the call was never answered, State otherwise.
func (e Event) ReportedState(current State) State {
	if e.Unanswered != Unknown && current.Rank() < InProgress.Rank() {
		return e.Unanswered
	}
	return e.State
}

// HandledBy reports whether agent took or joined the call.
func (c Call) HandledBy(agent string) bool {
	return agent != "" && (c.Agent == agent || slices.Contains(c.Agents, agent))
}

func fill(field *string, value string) {
	if *field == "" {
		*field = value
	}
}
