package carrier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Outcome is what a carrier's answer means for routing. The zero value is OutcomeUnknown.
type Outcome int8

const (
	OutcomeUnknown Outcome = iota
	// Accepted: the carrier took the request (placed the call, hung it up), or a placed call
	// was delivered.
	Accepted
	// CarrierFault: this carrier failed us. Try the next carrier now, and count the attempt
	// against this carrier's breaker.
	CarrierFault
	// Final: stop. The attempt failed or ended for a reason no other carrier would change
	// (the callee is busy or declined, the number is invalid, the caller gave up, our own
	// request was malformed). Do not ring the callee again elsewhere, and do not count it
	// against the carrier.
	Final
)

var outcomeNames = [...]string{
	OutcomeUnknown: "unknown",
	Accepted:       "accepted",
	CarrierFault:   "carrier-fault",
	Final:          "final",
}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return outcomeNames[OutcomeUnknown]
	}
	return outcomeNames[o]
}

// ParseOutcome reads an outcome by its name ("accepted", "carrier-fault", "final").
func ParseOutcome(name string) (Outcome, error) {
	for o, n := range outcomeNames {
		if n == name && o != int(OutcomeUnknown) {
			return Outcome(o), nil
		}
	}
	return OutcomeUnknown, fmt.Errorf("carrier: unknown outcome %q", name)
}

func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

func (o *Outcome) UnmarshalText(b []byte) error {
	if len(b) == 0 || string(b) == "unknown" {
		*o = OutcomeUnknown
		return nil
	}
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// Result is the classified answer to one request to a carrier, or how a placed call ended.
type Result struct {
	Outcome Outcome
	// Reason is short and drawn from a small vocabulary, fit for a metric label and a call's
	// history: "accepted", "http 503", "timeout", "dial failed", "twilio 21211 invalid
	// number", "telnyx 10002 invalid number", "sip 486 busy".
	Reason string
	// HTTPStatus is the carrier's HTTP status; 0 if no response arrived.
	HTTPStatus int
	// Code is the carrier's error code (Twilio's code, Telnyx's errors[0].code) for API
	// answers, or the SIP status for ClassifyEnding; 0 if none.
	Code int
	// Retryable says the same request may be sent again to the same carrier without risking
	// a second call: it provably never reached the carrier (dial, DNS or TLS failure, 408,
	// 429), or the carrier drops duplicates (Telnyx command_id within 60 s). A Twilio
	// timeout or 5xx is not retryable: the call may exist.
	Retryable bool
	// MaybeCreated says a failed request may have done its work all the same: it was sent in
	// full and then timed out or lost its connection, or the carrier answered 5xx, or a 2xx
	// we could not read. For a create-call this means a call may ring at the carrier that
	// nobody knows about (see Verdict).
	MaybeCreated bool
	// Detail is longer text for logs: the carrier's message or the transport error. It is
	// clipped, stripped of control characters, and never contains a secret.
	Detail string
}

// Gone reports that the carrier said the call is over: Twilio 21220 (not in progress) or
// Telnyx 90018 (already ended). An action on a live call (a redirect, a new stream) that is
// Gone is not the carrier's fault; the call's ending is for the reconciler to learn.
func (r Result) Gone() bool {
	return r.Code == twilioNotInProgress || r.Code == telnyxCallEnded
}

func (r Result) String() string {
	if r.Detail == "" {
		return r.Outcome.String() + ": " + r.Reason
	}
	return r.Outcome.String() + ": " + r.Reason + " (" + r.Detail + ")"
}

// ClassifyTwilio classifies a Twilio REST answer by HTTP status and error JSON
// ({"code":21211,"message":...,"status":400,"more_info":...}). A 2xx is Accepted here; the
// client still checks the body it needs.
func ClassifyTwilio(status int, body []byte) Result {
	r := classifyStatus(status)
	if r.Outcome == Accepted {
		return r
	}
	var e struct {
		Code    flexCode `json:"code"`
		Message string   `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return r
	}
	r.Code = int(e.Code)
	r.Detail = clip(e.Message)
	if r.Code == 0 {
		return r
	}
	r.Reason = "twilio " + strconv.Itoa(r.Code)
	if c, ok := twilioCodes[r.Code]; ok {
		r.Reason += " " + c.label
		if c.final && numberVerdict(status) {
			r.Outcome, r.Retryable = Final, false
		}
	}
	return r
}

type codeInfo struct {
	label string
	final bool
}

// twilioCodes names the Twilio error codes we act on or want readable (Twilio's error
// dictionary, https://www.twilio.com/docs/api/errors/<code>). Final codes are about the
// destination number: every carrier would refuse it. Geo permissions (21215, 13227) are
// final too: they are fraud controls the account owner set per destination, and routing
// around them through another carrier would defeat them; a blocked destination also says
// nothing about the carrier's health. Codes about our side (credentials, caller id, trial
// limits) stay carrier faults: another carrier, configured apart, may well take the call.
var twilioCodes = map[int]codeInfo{
	21211: {"invalid number", true},     // Invalid 'To' Phone Number
	21214: {"number unreachable", true}, // 'To' phone number cannot be reached
	21215: {"geo permission", true},     // Account not authorized to call this number
	// Call blocked by Twilio: its error page lists a high fraud risk, regulation, and "a +1
	// destination and your account is missing a Primary Customer Profile": a setting of
	// this Twilio account, which another carrier does not share. Not final.
	21216:               {"blocked by twilio", false},
	21217:               {"invalid number", true},        // Phone number does not appear to be valid
	13223:               {"invalid number format", true}, // Dial: Invalid phone number format
	13224:               {"invalid number", true},        // Dial: invalid number / not supported
	13225:               {"number restricted", true},     // Dial: Forbidden phone number
	13227:               {"geo permission", true},        // Dial: No International Authorization
	20003:               {"credentials rejected", false},
	20404:               {"not found", false},
	20429:               {"too many requests", false},
	10004:               {"concurrency limit", false},
	21210:               {"from not verified", false},
	21212:               {"invalid from", false},
	21219:               {"to not verified", false}, // trial accounts: a limit of this account, not the number
	twilioNotInProgress: {"call not in progress", false},
}

// twilioNotInProgress is Twilio's "Invalid call state": a realtime operation (a redirect, a
// recording) on a call that is not in progress (https://www.twilio.com/docs/api/errors/21220).
const twilioNotInProgress = 21220

// ClassifyTelnyx classifies a Telnyx API answer by HTTP status and error JSON
// ({"errors":[{"code":"10002","title":...,"detail":...,"source":{"pointer":"/to"}}]}).
// Telnyx drops commands that repeat a command_id within 60 s and asks clients to retry 5xx
// at once with the same command_id, so a 5xx here is Retryable.
func ClassifyTelnyx(status int, body []byte) Result {
	r := classifyStatus(status)
	if r.Outcome == Accepted {
		return r
	}
	if status >= 500 && status < 600 {
		r.Retryable = true
	}
	var e struct {
		Errors []telnyxError `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return r
	}
	first := e.Errors[0]
	if numberVerdict(status) {
		for _, te := range e.Errors {
			if te.aboutNumber() {
				first = te
				r.Outcome, r.Retryable = Final, false
				break
			}
		}
	}
	r.Code = int(first.Code)
	r.Detail = clip(strings.TrimSuffix(first.Title+": "+first.Detail, ": "))
	if r.Code != 0 {
		r.Reason = "telnyx " + strconv.Itoa(r.Code)
		switch c, ok := telnyxCodes[r.Code]; {
		case first.Source.Pointer == "/from" && c.final:
			r.Reason += " invalid from"
		case ok:
			r.Reason += " " + c.label
		}
	}
	if r.Outcome == Final && r.Code == 0 {
		r.Reason = "telnyx invalid number"
	}
	// A call that ended already is nothing to blame the carrier for.
	if r.Code == telnyxCallEnded && r.Outcome == CarrierFault && numberVerdict(status) {
		r.Outcome = Final
	}
	return r
}

const telnyxCallEnded = 90018

// TelnyxCallEnded is the Telnyx error code for a command on a call that has ended already.
const TelnyxCallEnded = telnyxCallEnded

// telnyxCodes are from Telnyx's API error catalogue
// (https://developers.telnyx.com/development/api-fundamentals/api-errors). Final ones are
// those about a number; whether the number is the callee's is decided by aboutNumber.
var telnyxCodes = map[int]codeInfo{
	10001:           {"inactive number", true},
	10002:           {"invalid number", true},
	10016:           {"number not e164", true},
	10005:           {"not found", false},
	10007:           {"unexpected error", false},
	10008:           {"request timeout", false},
	10009:           {"credentials rejected", false},
	10010:           {"not authorized", false},
	10011:           {"too many requests", false},
	10015:           {"bad request", false},
	telnyxCallEnded: {"call already ended", false},
}

type telnyxError struct {
	Code   flexCode `json:"code"`
	Title  string   `json:"title"`
	Detail string   `json:"detail"`
	Source struct {
		Pointer string `json:"pointer"`
	} `json:"source"`
}

// aboutNumber reports whether the error is about the callee's number: it points at "to", or
// carries a number code and points nowhere. A number code pointing at "from" is about our
// caller id, a configuration fault of this carrier.
func (e telnyxError) aboutNumber() bool {
	switch e.Source.Pointer {
	case "/to":
		return true
	case "":
		return telnyxCodes[int(e.Code)].final
	}
	return false
}

// numberVerdict reports whether a status can carry a verdict on the number. 401 means our
// credentials, 408 and 429 mean the request was not looked at: whatever code rides along,
// the number was never judged.
func numberVerdict(status int) bool {
	return status >= 400 && status < 500 && status != 401 && status != 408 && status != 429
}

// classifyStatus is the verdict from the HTTP status alone.
//
// 401 and 403 are carrier faults although no retry on this carrier will help: the carrier
// refuses our credentials (wrong or revoked token, suspended account), so it is unusable for
// every call until an admin acts, which is what an open breaker says; the next carrier may
// well take the call. 404 and 405 mean a wrong api_url or account id, also this carrier's
// configuration. Other 4xx without a code we know are carrier faults too: the carrier did
// not place the call, so trying the next one cannot ring the callee twice, while calling it
// Final would give up on a call another carrier might carry. The cost is that an unknown
// "bad number" code counts against a healthy carrier; the breaker's ratio and minimum
// request count keep one bad number from opening it.
func classifyStatus(status int) Result {
	r := Result{Outcome: CarrierFault, HTTPStatus: status, Reason: "http " + strconv.Itoa(status)}
	switch {
	case status >= 200 && status < 300:
		r.Outcome, r.Reason = Accepted, "accepted"
	case status >= 300 && status < 400:
		r.Reason = "unexpected redirect"
	case status == 408, status == 429:
		// Neither was processed: 408 is the server giving up on reading our request, 429
		// (Twilio 20429) is "not processed and safe to retry after backing off".
		r.Retryable = true
	case status >= 500:
		// Whatever failed may have failed after the call was created: neither carrier
		// documents a 5xx on create as "nothing happened".
		r.MaybeCreated = true
	}
	return r
}

// ClassifyError classifies a request that got no HTTP answer. Failures that provably sent
// nothing (dial, DNS, TLS) are Retryable; the caller cancelling is Final, because the
// carrier did nothing wrong and there is nobody left to place the call for.
func ClassifyError(err error) Result {
	if err == nil {
		return Result{}
	}
	r := Result{Outcome: CarrierFault, Reason: "transport error", Detail: clip(err.Error())}
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		netErr net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		r.Outcome, r.Reason = Final, "canceled"
	case errors.As(err, &dnsErr):
		r.Reason, r.Retryable = "dns failed", true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		r.Reason, r.Retryable = "dial failed", true
		if opErr.Timeout() {
			r.Reason = "dial timeout"
		}
	case isTLSError(err):
		r.Reason, r.Retryable = "tls failed", true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		r.Reason = "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		r.Reason = "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		r.Reason = "connection closed"
	}
	// A request that was written in full and then got no answer may have been acted on.
	if r.Outcome == CarrierFault && errors.Is(err, errSent) {
		r.MaybeCreated = true
	}
	return r
}

// isTLSError reports a failed TLS handshake: nothing was sent, and the carrier's
// certificate (or our trust store) is wrong, which no retry on another address fixes soon.
func isTLSError(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		header  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}

// flexCode reads an error code sent as a number (Twilio) or a string of digits (Telnyx).
// Anything else reads as 0 rather than failing the whole error body.
type flexCode int

func (c *flexCode) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		*c = flexCode(n)
	}
	return nil
}

// Clip makes carrier-supplied or error text safe for one log line, as a Result's Detail is.
func Clip(s string) string { return clip(s) }

// clip makes carrier-supplied or error text safe for one log line: at most maxDetail bytes
// of valid UTF-8, control characters turned into spaces.
func clip(s string) string {
	const maxDetail = 200
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.TrimSpace(s)
}
