package call

import (
	"maps"
	"strconv"
)

// Claim is a carrier's standing on one call. A call belongs to the carriers of its attempts:
// an outbound call to every carrier the placer tried (each one claimed before its request
// was sent, since its callbacks may beat its answer), an inbound call to the carrier it came
// in on. Nothing from any other carrier touches it, whatever its signature says.
type Claim struct {
	// Attempt is the attempt the carrier was given (from 1); 0 for the carrier an inbound
	// call came in on.
	Attempt int
	// Abandoned: we gave up on this attempt (its request failed or may have been created too
	// late). Whatever the carrier reports about the call now is an orphan's: it is kept in the
	// history and changes nothing.
	Abandoned bool
}

// Claim records that attempt n of the call goes to carrier, before its request is sent.
func (c Call) Claim(carrier string, n int) Call {
	c.Claims = maps.Clone(c.Claims)
	if c.Claims == nil {
		c.Claims = map[string]Claim{}
	}
	c.Claims[carrier] = Claim{Attempt: n}
	return c
}

// Abandon records that we gave up on carrier's attempt. A carrier call id that an early
// callback of that attempt put in the record is cleared: it is the orphan's, not the call's.
func (c Call) Abandon(carrier string) Call {
	cl, ok := c.Claims[carrier]
	if !ok {
		return c
	}
	c.Claims = maps.Clone(c.Claims)
	cl.Abandoned = true
	c.Claims[carrier] = cl
	if c.Carrier == carrier {
		c.CarrierCallID = ""
	}
	return c
}

// standing is what an event's sender is to the call.
type standing int8

const (
	owner   standing = iota // ours, or the call's carrier on its live attempt
	foreign                 // a carrier with no attempt on the call
	orphan                  // a carrier on an attempt we gave up on
)

// standingOf says who e's sender is to c. Our own events (no carrier) and the event that
// creates a call always stand; a call with no claims on record but a carrier (one stored
// before claims existed) belongs to that carrier.
func (c Call) standingOf(e Event) standing {
	if e.Carrier == "" || c.CreatedAt.IsZero() {
		return owner
	}
	cl, ok := c.Claims[e.Carrier]
	switch {
	case !ok && c.Carrier == e.Carrier:
		return owner
	case !ok:
		return foreign
	case cl.Abandoned, e.Attempt != 0 && cl.Attempt != 0 && e.Attempt != cl.Attempt:
		return orphan
	}
	return owner
}

// OrphanDetail is the history detail of an event from an attempt that is not the call's:
// "orphan of attempt 1", then the event's own detail.
func OrphanDetail(attempt int, detail string) string {
	d := "orphan of attempt " + strconv.Itoa(attempt)
	if detail != "" {
		d += "; " + detail
	}
	return d
}

// orphanAttempt is the attempt an orphan event belongs to: the one its URL named, else the
// carrier's.
func (c Call) orphanAttempt(e Event) int {
	if e.Attempt != 0 {
		return e.Attempt
	}
	return c.Claims[e.Carrier].Attempt
}
