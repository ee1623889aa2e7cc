package call

import "fmt"

// Source says who told us about an event: it is kept with every history entry so that a
// call's record shows which of its facts came from the carrier's callbacks, which from the
// answers to our own requests, and which we learnt by asking the carrier afterwards.
type Source int8

const (
	// UnknownSource is the zero value: an event stored before sources were recorded.
	UnknownSource Source = iota
	// SourceCallback: a carrier's webhook or status callback.
	SourceCallback
	// SourceAPI: the carrier's answer to a REST request of ours (placing or hanging up a call).
	SourceAPI
	// SourceReconciled: learnt by asking the carrier's REST API about the call, because its
	// callbacks went quiet.
	SourceReconciled
	// SourceSwitchboard: our own bookkeeping (the call was placed, an attempt on a carrier, an
	// ending because no carrier took the call, an agent joining).
	SourceSwitchboard
	// SourceAgent: something an agent did to the call's record (saved its wrap-up notes and
	// disposition).
	SourceAgent
)

var sourceNames = [...]string{
	UnknownSource:     "",
	SourceCallback:    "callback",
	SourceAPI:         "api",
	SourceReconciled:  "reconciled",
	SourceSwitchboard: "switchboard",
	SourceAgent:       "agent",
}

func (s Source) String() string {
	if s < 0 || int(s) >= len(sourceNames) {
		return ""
	}
	return sourceNames[s]
}

// ParseSource reads a source by its name; "" is UnknownSource.
func ParseSource(name string) (Source, error) {
	for s, n := range sourceNames {
		if n == name {
			return Source(s), nil
		}
	}
	return UnknownSource, fmt.Errorf("call: unknown source %q", name)
}

// MarshalText makes a Source read as its name in JSON.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a source name.
func (s *Source) UnmarshalText(b []byte) error {
	v, err := ParseSource(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
