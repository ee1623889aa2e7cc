package webhooks

import (
	"strconv"
	"time"

	"github.com/switchboard/switchboard/call"
)

// maxCallSid bounds a carrier's call id. Twilio's are 34 characters; Telnyx TeXML's
// ("v3:" and a token) about 57.
const maxCallSid = 64

// The form fields ParseTwilioCallback reads; everything else in the body (and Twilio adds
// fields without notice) is ignored here but still covered by the signature.
const (
	fCallSid = iota
	fCallStatus
	fSequenceNumber
	fTimestamp
	fDirection
	fFrom
	fTo
	fCallDuration
	fSipResponseCode
	numFields
)

var fieldNames = [numFields]string{
	fCallSid:         "CallSid",
	fCallStatus:      "CallStatus",
	fSequenceNumber:  "SequenceNumber",
	fTimestamp:       "Timestamp",
	fDirection:       "Direction",
	fFrom:            "From",
	fTo:              "To",
	fCallDuration:    "CallDuration",
	fSipResponseCode: "SipResponseCode",
}

// maxFieldName is the longest of fieldNames; a longer key cannot be one of ours.
const maxFieldName = len("SipResponseCode")

// ParseTwilioCallback reads a Twilio-style voice status callback (or voice webhook) into a
// call.Event. query is the raw query string of the request, where our own call id travels
// as sb_call; body is the raw form body. Verify the signature first: this trusts what it
// reads.
//
// Identity fields are strict, descriptive ones lenient: a missing or malformed CallSid,
// CallStatus or SequenceNumber, or a malformed sb_call, is a *FormError; an unreadable
// Timestamp, Direction, CallDuration or SipResponseCode is left out, because rejecting
// the callback would lose the state change it carries (Twilio does not retry a 4xx).
// A field we read that is not even valid percent-encoding is a *FormError: the body is
// corrupt, and VerifyTwilio refuses such a body anyway.
//
// Event.ID is "tw:" + CallSid + ":" + SequenceNumber + ":" + CallStatus, the same for every
// retry of one callback and different for each distinct one. A CallSid has no ':' of
// Twilio's own, but Telnyx TeXML's do; the ID still reads back unambiguously from the
// right, since the sequence number is digits and the status a fixed word.
func ParseTwilioCallback(carrier string, query, body []byte) (call.Event, error) {
	var raw [numFields][]byte
	var found [numFields]bool
	for len(body) > 0 {
		var k, v []byte
		k, v, body = nextPair(body)
		f := twilioField(k)
		if f < 0 || found[f] {
			continue // first occurrence wins, as url.Values.Get
		}
		raw[f], found[f] = v, true
	}

	// Every string of the event is cut from one allocation.
	var arr [384]byte
	b := arr[:0]
	var ok bool
	var sid, status, seq, from, to, ts, callID, detail span

	b = append(b, "tw:"...)
	sid.start = len(b)
	if b, ok = appendUnescape(b, raw[fCallSid]); !ok {
		return call.Event{}, badField(fCallSid, "bad percent-encoding")
	}
	sid.end = len(b)
	if !found[fCallSid] || sid.len() == 0 {
		return call.Event{}, badField(fCallSid, "required")
	}
	if !isCallSid(b[sid.start:sid.end]) {
		return call.Event{}, badField(fCallSid, "not a call id")
	}

	b = append(b, ':')
	seq.start = len(b)
	if b, ok = appendUnescape(b, raw[fSequenceNumber]); !ok {
		return call.Event{}, badField(fSequenceNumber, "bad percent-encoding")
	}
	seq.end = len(b)
	if seq.len() > 0 {
		if _, ok := parseDigits(b[seq.start:seq.end]); !ok {
			return call.Event{}, badField(fSequenceNumber, "not a number")
		}
	}

	b = append(b, ':')
	status.start = len(b)
	if b, ok = appendUnescape(b, raw[fCallStatus]); !ok {
		return call.Event{}, badField(fCallStatus, "bad percent-encoding")
	}
	status.end = len(b)
	if status.len() == 0 {
		return call.Event{}, badField(fCallStatus, "required")
	}
	id := span{0, len(b)}

	if from, b, ok = appendField(b, raw[fFrom]); !ok {
		return call.Event{}, badField(fFrom, "bad percent-encoding")
	}
	if to, b, ok = appendField(b, raw[fTo]); !ok {
		return call.Event{}, badField(fTo, "bad percent-encoding")
	}
	if ts, b, ok = appendField(b, raw[fTimestamp]); !ok {
		return call.Event{}, badField(fTimestamp, "bad percent-encoding")
	}

	if v, present := queryValue(query, "sb_call"); present {
		callID, b, ok = appendField(b, v)
		if !ok || !isCallID(b[callID.start:callID.end]) {
			return call.Event{}, &FormError{Field: "sb_call", Reason: "not a call id"}
		}
	}
	// sb_attempt is ours too: the attempt whose URLs these are. URLs handed out before it
	// existed have none, and still work.
	var attempt int64
	if v, present := queryValue(query, "sb_attempt"); present {
		if attempt, ok = parseDigits(v); !ok || attempt < 1 || attempt > 1000 {
			return call.Event{}, &FormError{Field: "sb_attempt", Reason: "not an attempt number"}
		}
	}

	// Direction, SipResponseCode and CallDuration are decoded past the end of the event's
	// string, read, and cut off again.
	mark := len(b)
	var dir, sip, dur span
	if dir, b, ok = appendField(b, raw[fDirection]); !ok {
		return call.Event{}, badField(fDirection, "bad percent-encoding")
	}
	if sip, b, ok = appendField(b, raw[fSipResponseCode]); !ok {
		return call.Event{}, badField(fSipResponseCode, "bad percent-encoding")
	}
	if dur, b, ok = appendField(b, raw[fCallDuration]); !ok {
		return call.Event{}, badField(fCallDuration, "bad percent-encoding")
	}
	direction := twilioDirection(b[dir.start:dir.end])
	code, codeOK := parseDigits(b[sip.start:sip.end])
	secs, secsOK := parseDigits(b[dur.start:dur.end])
	b = b[:mark]

	detail.start = len(b)
	if codeOK && code >= 100 && code < 700 {
		b = strconv.AppendInt(append(b, "sip "...), code, 10)
	}
	if secsOK {
		if len(b) > detail.start {
			b = append(b, ", "...)
		}
		b = append(strconv.AppendInt(append(b, "duration "...), secs, 10), 's')
	}
	detail.end = len(b)

	s := string(b)
	state, err := call.ParseState(status.of(s))
	if err != nil {
		return call.Event{}, badField(fCallStatus, "unknown status")
	}
	return call.Event{
		ID:            id.of(s),
		CallID:        callID.of(s),
		Carrier:       carrier,
		CarrierCallID: sid.of(s),
		State:         state,
		Direction:     direction,
		From:          from.of(s),
		To:            to.of(s),
		At:            parseCallbackTime(ts.of(s)),
		Detail:        detail.of(s),
		Attempt:       int(attempt),
	}, nil
}

// span is a piece of the event's one string, by offsets, until that string exists.
type span struct{ start, end int }

func (p span) len() int           { return p.end - p.start }
func (p span) of(s string) string { return s[p.start:p.end] }
func appendField(b, v []byte) (span, []byte, bool) {
	start := len(b)
	b, ok := appendUnescape(b, v)
	return span{start, len(b)}, b, ok
}

func badField(f int, reason string) error {
	return &FormError{Field: fieldNames[f], Reason: reason}
}

// twilioField returns which of fieldNames the (still encoded) key k is, or -1.
func twilioField(k []byte) int {
	if needsUnescape(k) {
		if len(k) > 3*maxFieldName {
			return -1
		}
		var buf [3 * maxFieldName]byte
		var ok bool
		if k, ok = appendUnescape(buf[:0], k); !ok {
			return -1
		}
	}
	switch string(k) {
	case "CallSid":
		return fCallSid
	case "CallStatus":
		return fCallStatus
	case "SequenceNumber":
		return fSequenceNumber
	case "Timestamp":
		return fTimestamp
	case "Direction":
		return fDirection
	case "From":
		return fFrom
	case "To":
		return fTo
	case "CallDuration":
		return fCallDuration
	case "SipResponseCode":
		return fSipResponseCode
	}
	return -1
}

// isCallSid accepts Twilio's "CA" and 32 hex digits and what Twilio-compatible providers
// use instead: a short token of letters, digits, '_', '-' and ':'.
func isCallSid(s []byte) bool {
	if len(s) == 0 || len(s) > maxCallSid {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// twilioDirection maps Twilio's leg directions onto who started the call. Trunking
// origination is the PSTN calling into our side; termination is us calling out.
func twilioDirection(d []byte) call.Direction {
	switch string(d) {
	case "inbound", "trunking-originating":
		return call.Inbound
	case "outbound-api", "outbound-dial", "outbound", "trunking-terminating":
		return call.Outbound
	}
	switch {
	case hasPrefix(d, "inbound"):
		return call.Inbound
	case hasPrefix(d, "outbound"):
		return call.Outbound
	}
	return call.UnknownDirection
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// callbackTimeLayouts are tried in order: Twilio's RFC 2822 (with and without the weekday,
// numeric or named zone), then the ISO 8601 that Telnyx TeXML sends, with a 'T' or, as in
// the TeXML examples of Telnyx's docs ("2021-04-28 21:51:18.731479Z"), a space; fractional
// seconds are accepted by every layout with seconds.
var callbackTimeLayouts = [...]string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
	time.RFC3339,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 Z0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
}

// parseCallbackTime returns the zero time for an absent or unreadable Timestamp: the
// store then orders by arrival, which is all it could do anyway.
func parseCallbackTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range callbackTimeLayouts {
		// A layout without a zone reads as UTC, which is what Telnyx says its TeXML
		// timestamps are.
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
