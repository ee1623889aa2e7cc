package dispatch

import (
	"fmt"

	"github.com/sony/gobreaker/v2"
)

// BreakerState is where a carrier's breaker stands. The zero value is unknown.
type BreakerState int8

const (
	BreakerUnknown BreakerState = iota
	BreakerClosed
	BreakerHalfOpen
	BreakerOpen
)

var breakerStateNames = [...]string{"unknown", "closed", "half-open", "open"}

func (s BreakerState) String() string {
	if s < 0 || int(s) >= len(breakerStateNames) {
		return breakerStateNames[0]
	}
	return breakerStateNames[s]
}

func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Gauge is the value of the breaker-state metric: 0 closed, 1 half-open, 2 open.
func (s BreakerState) Gauge() float64 {
	switch s {
	case BreakerHalfOpen:
		return 1
	case BreakerOpen:
		return 2
	}
	return 0
}

// Force is an admin's override of a breaker. The zero value is unknown, which reads as auto.
type Force int8

const (
	ForceUnknown Force = iota
	ForceAuto          // the breaker decides
	ForceOpen          // drained: no new calls
	ForceClosed        // always used, whatever the breaker counts
)

var forceNames = [...]string{"unknown", "auto", "open", "closed"}

func (f Force) String() string {
	if f < 0 || int(f) >= len(forceNames) {
		return forceNames[0]
	}
	return forceNames[f]
}

// ParseForce reads "auto", "open" or "closed".
func ParseForce(s string) (Force, error) {
	for i, n := range forceNames {
		if n == s && i != 0 {
			return Force(i), nil
		}
	}
	return ForceUnknown, fmt.Errorf("carrier: unknown breaker state %q (want open, closed or auto)", s)
}

func (f Force) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// stored is the force as the store keeps it.
func (f Force) stored() string {
	switch f {
	case ForceOpen:
		return "open"
	case ForceClosed:
		return "closed"
	}
	return ""
}

func forceOf(stored string) Force {
	switch stored {
	case "open":
		return ForceOpen
	case "closed":
		return ForceClosed
	}
	return ForceAuto
}

func fromGobreaker(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateClosed:
		return BreakerClosed
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerUnknown
}
