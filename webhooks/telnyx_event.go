package webhooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/call"
)

// Bounds on the identifiers a Telnyx webhook hands us; they become Redis keys and history
// entries. data.id is a UUID and call_control_id about 60 characters.
const (
	maxTelnyxEventID = 128
	maxTelnyxCallID  = 128
)

// telnyxWebhook is the part of the Call Control v2 envelope we read. Descriptive fields
// are looseString so that a field changing type upstream degrades that field, not the
// webhook (Telnyx does not retry a 4xx, so a rejected webhook is a lost event).
type telnyxWebhook struct {
	Data struct {
		ID         string      `json:"id"`
		EventType  string      `json:"event_type"`
		OccurredAt looseString `json:"occurred_at"`
		Payload    struct {
			CallControlID  string      `json:"call_control_id"`
			From           looseString `json:"from"`
			To             looseString `json:"to"`
			Direction      looseString `json:"direction"`
			ClientState    looseString `json:"client_state"`
			HangupCause    looseString `json:"hangup_cause"`
			HangupSource   looseString `json:"hangup_source"`
			SipHangupCause looseString `json:"sip_hangup_cause"`
			Digit          looseString `json:"digit"`
		} `json:"payload"`
	} `json:"data"`
}

// looseString takes a JSON string, or a number or boolean as its text; null, arrays and
// objects read as "".
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
	case b[0] == '"':
		// The decoder has already validated b; without escapes or bad UTF-8 to rewrite,
		// the string is its inside, and a nested json.Unmarshal would cost more than the rest.
		if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*s = looseString(inner)
			return nil
		}
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = looseString(v)
		return nil
	case b[0] == '-' || '0' <= b[0] && b[0] <= '9' || b[0] == 't' || b[0] == 'f':
		*s = looseString(b)
		return nil
	}
	*s = ""
	return nil
}

// ParseTelnyxEvent reads a Telnyx Call Control v2 webhook into a call.Event. Verify the
// signature first: this trusts what it reads.
//
// call.initiated, call.answered and call.hangup report states (a hangup reports Completed
// if the call was answered and otherwise the state its hangup_cause and hangup_source
// give, as Event.Unanswered); every other event type goes into the history with State
// Unknown. Event.ID is "tx:" + data.id, which Telnyx keeps across retries. CallID is our
// call id when client_state is one, base64-encoded, as we set it when dialing.
//
// Invalid JSON, or a missing data.id, data.event_type or data.payload.call_control_id, is
// an error wrapping ErrMalformed.
func ParseTelnyxEvent(carrier string, body []byte) (call.Event, error) {
	var w telnyxWebhook
	if err := json.Unmarshal(body, &w); err != nil {
		// The json error quotes the offending input; keep it out of the message.
		return call.Event{}, fmt.Errorf("%w: body is not a Call Control JSON envelope", ErrMalformed)
	}
	d, p := &w.Data, &w.Data.Payload
	switch {
	case d.ID == "":
		return call.Event{}, &FormError{Field: "data.id", Reason: "required"}
	case !isToken(d.ID, maxTelnyxEventID):
		return call.Event{}, &FormError{Field: "data.id", Reason: "not an id"}
	case d.EventType == "":
		return call.Event{}, &FormError{Field: "data.event_type", Reason: "required"}
	case p.CallControlID == "":
		return call.Event{}, &FormError{Field: "data.payload.call_control_id", Reason: "required"}
	case !isToken(p.CallControlID, maxTelnyxCallID):
		return call.Event{}, &FormError{Field: "data.payload.call_control_id", Reason: "not an id"}
	}

	e := call.Event{
		ID:            "tx:" + d.ID,
		CallID:        telnyxClientCallID(string(p.ClientState)),
		Carrier:       carrier,
		CarrierCallID: p.CallControlID,
		From:          string(p.From),
		To:            string(p.To),
	}
	switch p.Direction {
	case "incoming":
		e.Direction = call.Inbound
	case "outgoing":
		e.Direction = call.Outbound
	}
	if t, err := time.Parse(time.RFC3339Nano, string(d.OccurredAt)); err == nil {
		e.At = t.UTC()
	}

	switch d.EventType {
	case "call.initiated":
		e.State = call.Initiated
	case "call.answered":
		e.State = call.InProgress
	case "call.hangup":
		e.State, e.Unanswered = call.Completed, telnyxUnansweredState(string(p.HangupCause), string(p.HangupSource))
		e.Detail = telnyxHangupDetail(string(p.HangupCause), string(p.HangupSource), string(p.SipHangupCause))
	case "call.dtmf.received":
		e.Detail = "call.dtmf.received"
		if p.Digit != "" {
			e.Detail += " " + dtmfDigits(string(p.Digit))
		}
	default:
		e.Detail = clipToken(d.EventType, 48)
	}
	if e.Direction == call.UnknownDirection && e.State != call.Unknown && p.ClientState == "" {
		// Only call.initiated names the direction. Every Dial and Answer of ours sets
		// client_state, and Telnyx echoes it in every later webhook of the call, so a call's
		// answer or hangup with none is about a call we never commanded: an inbound call not
		// answered (yet). As inbound it is stored at once under the call's derived id rather
		// than parked to wait for a call.initiated that may never be stored (refused while
		// Redis was away and not retried): parked, it would be acknowledged and then shown by
		// no call. Events that report no state (streaming.*) are left to the index.
		e.Direction = call.Inbound
	}
	return e, nil
}

// telnyxUnansweredState is how a Telnyx call that ends with this hangup_cause ended if it
// was never answered. A hangup does not say whether the call was answered, so the event
// reports Completed with this as its Unanswered state and the store picks one atomically:
// as in Twilio's model, an answered call that ends is completed, whatever the cause.
// Causes that are not in Telnyx's list today count as failures, so an unknown ending never
// reads as a successful call. The table is in docs/conformance.md.
func telnyxUnansweredState(cause, source string) call.State {
	switch cause {
	case "normal_clearing":
		// Cleared before an answer: by the caller, a call given up (ours, or an inbound
		// caller who stopped waiting); by the callee, a call not taken.
		if source == "caller" {
			return call.Canceled
		}
		return call.NoAnswer
	case "originator_cancel":
		return call.Canceled
	case "user_busy":
		return call.Busy
	case "call_rejected", "no_answer", "timeout", "time_limit":
		// Twilio's model too: "no-answer" is "no answer or the call was rejected".
		return call.NoAnswer
	}
	// not_found, unspecified, and anything new.
	return call.Failed
}

// telnyxHangupDetail says why a call ended in under 64 bytes, e.g.
// "user_busy by callee, sip 486".
func telnyxHangupDetail(cause, source, sip string) string {
	var b strings.Builder
	if cause == "" {
		cause = "hangup"
	}
	b.WriteString(clipToken(cause, 32))
	if source == "caller" || source == "callee" {
		b.WriteString(" by ")
		b.WriteString(source)
	}
	if _, ok := parseDigits([]byte(sip)); ok && len(sip) <= 3 {
		b.WriteString(", sip ")
		b.WriteString(sip)
	}
	return b.String()
}

// telnyxClientCallID returns our call id from a client_state, or "" when it holds
// anything else (another application's state, or nothing).
func telnyxClientCallID(clientState string) string {
	if clientState == "" || len(clientState) > 64 {
		return ""
	}
	var buf [48]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(clientState))
	if err != nil {
		if n, err = base64.RawStdEncoding.Decode(buf[:], []byte(clientState)); err != nil {
			return ""
		}
	}
	if !isCallID(buf[:n]) {
		return ""
	}
	return string(buf[:n])
}

// dtmfDigits keeps the DTMF alphabet (0-9, *, #, A-D) of at most 8 digits, '?' for
// anything else.
func dtmfDigits(s string) string {
	if len(s) > 8 {
		s = s[:8]
	}
	b := []byte(s)
	for i, c := range b {
		if !('0' <= c && c <= '9' || c == '*' || c == '#' || 'A' <= c && c <= 'D' || 'a' <= c && c <= 'd') {
			b[i] = '?'
		}
	}
	return string(b)
}

// isToken accepts the identifier alphabet of the carriers' ids (UUIDs, "v3:..." call
// control ids): no spaces, quotes or control characters to carry into keys and logs.
func isToken(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == ':' || c == '.'
}

// clipToken keeps a carrier-supplied word fit for a history entry: at most max bytes,
// anything outside the identifier alphabet replaced by '?'.
func clipToken(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	if s == "" || isToken(s, max) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !isTokenByte(c) {
			b[i] = '?'
		}
	}
	return string(b)
}
