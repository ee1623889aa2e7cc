package dispatch

import (
	"math/rand/v2"

	"github.com/switchboard/switchboard/carrier"
)

// Router decides which carriers a call tries, in order: lower priority first, and within a
// priority an order drawn at random by weight, as Twilio's origination URLs and Kamailio's
// weight-based dispatching do, so a priority's traffic splits in proportion to the weights
// while every carrier of the priority remains a fallback for the others. Disabled carriers
// and carriers whose breaker is open (or forced open) are skipped, with the reason.
type Router struct {
	reg      *carrier.Registry
	breakers *Breakers
	// intN returns a number in [0, n); tests inject a fixed sequence.
	intN func(n int) int
}

// NewRouter returns a router over reg's carriers and their breakers. intN is the random
// source (nil: math/rand/v2's IntN, which is safe for concurrent use).
func NewRouter(reg *carrier.Registry, b *Breakers, intN func(n int) int) *Router {
	if intN == nil {
		intN = rand.IntN
	}
	return &Router{reg: reg, breakers: b, intN: intN}
}

// Route is the decision for one call.
type Route struct {
	Candidates []Candidate `json:"candidates"` // in the order they are tried
	Skipped    []Skip      `json:"skipped"`
}

// Candidate is a carrier a call may try.
type Candidate struct {
	Carrier  string       `json:"carrier"`
	Kind     carrier.Kind `json:"kind"`
	Priority int          `json:"priority"`
	Weight   int          `json:"weight"`
	Breaker  BreakerState `json:"breaker"`
}

// Skip is a carrier left out, and why.
type Skip struct {
	Carrier string `json:"carrier"`
	Reason  string `json:"reason"`
}

// Route orders the carriers for a call now. It does no I/O.
func (r *Router) Route() Route {
	all := r.reg.All() // by priority, then id
	out := Route{Candidates: []Candidate{}, Skipped: []Skip{}}
	var group []Candidate
	flush := func() {
		out.Candidates = append(out.Candidates, r.shuffle(group)...)
		group = group[:0]
	}
	for i, cfg := range all {
		if i > 0 && cfg.Priority != all[i-1].Priority {
			flush()
		}
		if !cfg.Enabled {
			out.Skipped = append(out.Skipped, Skip{Carrier: cfg.ID, Reason: "disabled"})
			continue
		}
		state, why := r.breakers.Admits(cfg.ID)
		if why != "" {
			out.Skipped = append(out.Skipped, Skip{Carrier: cfg.ID, Reason: why})
			continue
		}
		group = append(group, Candidate{Carrier: cfg.ID, Kind: cfg.Kind, Priority: cfg.Priority, Weight: cfg.Weight, Breaker: state})
	}
	flush()
	return out
}

// shuffle orders one priority's carriers by weighted random sampling without replacement:
// each position goes to a remaining carrier with probability weight / remaining weight.
func (r *Router) shuffle(group []Candidate) []Candidate {
	out := make([]Candidate, 0, len(group))
	rest := append([]Candidate(nil), group...)
	for len(rest) > 0 {
		total := 0
		for _, c := range rest {
			total += c.Weight
		}
		pick, n := 0, r.intN(total)
		for i, c := range rest {
			if n < c.Weight {
				pick = i
				break
			}
			n -= c.Weight
		}
		out = append(out, rest[pick])
		rest = append(rest[:pick], rest[pick+1:]...)
	}
	return out
}
