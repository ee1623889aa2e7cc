// Package call is the domain of Switchboard: a call, the states it moves through, the
// events carriers report about it, and the pure function that folds an event into a call.
//
// It does no I/O and imports nothing else of ours and no third-party library: the store,
// the carrier-facing webhooks, the carrier clients and the agent side all speak its types.
package call

import "fmt"

// State is where a call stands. The zero value is Unknown, which no call is ever stored in.
type State int8

// The nine states of the public contract, in the order a call moves through them. The last
// five are terminal and absorb every later event.
const (
	Unknown State = iota
	Queued
	Initiated
	Ringing
	InProgress
	Completed
	Busy
	Failed
	NoAnswer
	Canceled
)

var stateNames = [...]string{
	Unknown:    "unknown",
	Queued:     "queued",
	Initiated:  "initiated",
	Ringing:    "ringing",
	InProgress: "in-progress",
	Completed:  "completed",
	Busy:       "busy",
	Failed:     "failed",
	NoAnswer:   "no-answer",
	Canceled:   "canceled",
}

// States lists every known state in rank order, for tables, tests and metrics.
var States = []State{Queued, Initiated, Ringing, InProgress, Completed, Busy, Failed, NoAnswer, Canceled}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return stateNames[Unknown]
	}
	return stateNames[s]
}

// ParseState reads a state by its contract name ("in-progress", "no-answer", ...).
func ParseState(name string) (State, error) {
	for s, n := range stateNames {
		if n == name && s != int(Unknown) {
			return State(s), nil
		}
	}
	return Unknown, fmt.Errorf("call: unknown state %q", name)
}

// Terminal reports whether a call in this state is over.
func (s State) Terminal() bool { return s >= Completed && s <= Canceled }

// Rank orders states so a call only ever moves forward. Every terminal state shares the top
// rank: once a call has ended, no other ending replaces the first one.
func (s State) Rank() int {
	switch {
	case s.Terminal():
		return int(Completed)
	case s > Unknown:
		return int(s)
	default:
		return 0
	}
}

// MarshalText makes a State read as its contract name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a contract name.
func (s *State) UnmarshalText(b []byte) error {
	if len(b) == 0 || string(b) == "unknown" {
		*s = Unknown
		return nil
	}
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Direction says who started a call.
type Direction int8

const (
	UnknownDirection Direction = iota
	Inbound                    // the far end called us
	Outbound                   // we placed the call through a carrier
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	}
	return "unknown"
}

// ParseDirection reads "inbound" or "outbound"; anything else is UnknownDirection.
func ParseDirection(name string) Direction {
	switch name {
	case "inbound":
		return Inbound
	case "outbound":
		return Outbound
	}
	return UnknownDirection
}

func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Direction) UnmarshalText(b []byte) error {
	*d = ParseDirection(string(b))
	if *d == UnknownDirection && len(b) > 0 && string(b) != "unknown" {
		return fmt.Errorf("call: unknown direction %q", b)
	}
	return nil
}
