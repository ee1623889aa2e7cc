package carrier

// Verdict is what the answer to a create-call request says about the call at the carrier,
// which decides what placing does next. The zero value is VerdictUnknown.
type Verdict int8

const (
	VerdictUnknown Verdict = iota
	// Created: the carrier took the call and told us its id.
	Created
	// Refused: a final answer; no carrier is tried after it (Outcome Final).
	Refused
	// NotCreated: the carrier failed us and provably created nothing (nothing was sent, or
	// it answered a 4xx, a 429 or a 408): the next carrier may be tried at once.
	NotCreated
	// MaybeCreated: the request reached the carrier and no answer says what became of it
	// (a timeout or a broken connection after the request was sent, a 5xx, a 2xx we cannot
	// read). A call may be ringing there: resend it where that is safe (Telnyx drops a
	// repeated command_id), or fail over and hang up the orphan.
	MaybeCreated
)

var verdictNames = [...]string{
	VerdictUnknown: "unknown",
	Created:        "created",
	Refused:        "refused",
	NotCreated:     "not-created",
	MaybeCreated:   "maybe-created",
}

func (v Verdict) String() string {
	if v < 0 || int(v) >= len(verdictNames) {
		return verdictNames[VerdictUnknown]
	}
	return verdictNames[v]
}

// Verdict classifies r as the answer to a create-call request.
func (r Result) Verdict() Verdict {
	switch {
	case r.Outcome == Accepted:
		return Created
	case r.Outcome == Final:
		return Refused
	case r.Outcome == CarrierFault && r.MaybeCreated:
		return MaybeCreated
	case r.Outcome == CarrierFault:
		return NotCreated
	}
	return VerdictUnknown
}
