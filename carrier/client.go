package carrier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Client is what routing needs from a carrier, whatever its kind.
type Client interface {
	// Place asks the carrier to call req.To. An Accepted result means the carrier took the
	// call; how it goes on is reported later by callbacks.
	Place(ctx context.Context, req PlaceRequest) (Placed, Result)
	// Hangup ends a call the carrier knows by carrierCallID. A call that has already ended
	// is Accepted.
	Hangup(ctx context.Context, carrierCallID string) Result
}

// PlaceRequest is one attempt to place one call through one carrier.
type PlaceRequest struct {
	// CallID is our call id. Telnyx echoes it back in client_state and uses it, with
	// Attempt, for command_id. Twilio has no such field: the caller puts the call id in
	// VoiceURL and StatusURL.
	CallID string
	// Attempt numbers the attempts of one call (across carriers and retries): a retry of the
	// same attempt reuses it, so Telnyx drops the duplicate; a new attempt takes a new one.
	Attempt int
	// To is the callee, E.164. From is our caller id, E.164; empty means the carrier's
	// configured From.
	To, From string
	// VoiceURL is the absolute URL Twilio fetches TwiML from when the call is answered
	// (unused by Telnyx). StatusURL is where the carrier sends status callbacks (Twilio's
	// StatusCallback) or webhooks (Telnyx's webhook_url). Both are built by the caller from
	// the public URL.
	VoiceURL, StatusURL string
	// VoiceFallbackURL is Twilio's FallbackUrl: fetched for TwiML instead when VoiceURL
	// cannot be (its instance died while the call rang); empty means none. Telnyx has no
	// per-call equivalent.
	VoiceFallbackURL string
	// StatusEvents are the Twilio status callback events to ask for; empty means initiated,
	// ringing, answered and completed.
	StatusEvents []string
	// RingTimeout is how long the callee's phone may ring; 0 leaves the carrier's default
	// (60 s on Twilio). Carriers take whole seconds from 5 to 600: it is rounded up and
	// clamped into that range.
	RingTimeout time.Duration
	// StreamURL is the ws:// or wss:// URL Telnyx streams the call's media to (Telnyx
	// only; Twilio is told by the TwiML at VoiceURL).
	StreamURL string
	// ClientState is what Telnyx echoes in every webhook of the call, as plain text (the
	// client base64-encodes it); empty means CallID, which is what webhooks expect.
	ClientState string
}

// Placed is what the carrier said about a call it took.
type Placed struct {
	// CarrierCallID is the carrier's handle on the call: Twilio's CallSid, Telnyx's
	// call_control_id.
	CarrierCallID string
	// Status is the carrier's word for the call's state ("queued" on Twilio); empty on
	// Telnyx, whose Dial answer carries none.
	Status string
}

// NewClient checks cfg (see Config.Normalize) and returns the client for its kind. hc may
// be nil, which means NewHTTPClient().
func NewClient(cfg Config, hc *http.Client) (Client, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case Twilio:
		return NewTwilioClient(cfg, hc), nil
	case Telnyx:
		return NewTelnyxClient(cfg, hc), nil
	}
	return nil, fmt.Errorf("carrier %q: no client for kind %v", cfg.ID, cfg.Kind)
}

// NewHTTPClient returns an HTTP client for carrier REST APIs, to be shared by every
// carrier client of a process. A few hundred calls per second at 100-300 ms a request is
// some tens to a hundred requests in flight per carrier; 256 idle connections per host keep
// them all warm, so a burst does not pay for TCP and TLS handshakes. Connecting gives up
// after 2 s, and no redirect is followed: a carrier API that redirects is misconfigured,
// and following would resend our credentials and the call to wherever it points.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           1024,
			MaxIdleConnsPerHost:    256,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    2 * time.Second,
			ResponseHeaderTimeout:  MaxRequestTimeout,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: maxBody,
		},
		CheckRedirect: noRedirects,
		// A backstop only: each request has its own, shorter, deadline.
		Timeout: MaxRequestTimeout,
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// clientFor returns a copy of hc that never follows redirects and keeps no cookies, whatever
// the caller's client was set up to do.
func clientFor(hc *http.Client) *http.Client {
	if hc == nil {
		return NewHTTPClient()
	}
	c := *hc
	c.CheckRedirect = noRedirects
	c.Jar = nil
	return &c
}

// maxBody bounds what we read of any answer: a call resource or an error is a few KiB, and
// a carrier (or whatever answers at a wrong api_url) must not make us buffer more.
const maxBody = 64 << 10

// requestTimeout is cfg's timeout, defaulted and capped even for a Config that skipped
// Normalize: no request may wait longer than MaxRequestTimeout.
func requestTimeout(cfg Config) time.Duration {
	switch d := cfg.RequestTimeout.Std(); {
	case d <= 0:
		return DefaultRequestTimeout
	case d > MaxRequestTimeout:
		return MaxRequestTimeout
	default:
		return d
	}
}

// roundTrip sends one request under its own deadline (shorter than ctx's when ctx allows
// more) and returns the status and at most maxBody bytes of the answer. The deadline covers
// reading the body too. An error after the whole request was written wraps errSent: the
// carrier may have acted on it.
func roundTrip(ctx context.Context, hc *http.Client, timeout time.Duration, newReq func(context.Context) (*http.Request, error)) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	})
	req, err := newReq(ctx)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchboard")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, sent(err, wrote.Load())
	}
	defer func() { _ = resp.Body.Close() }() // the body is read to its end or its limit; a close error adds nothing
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, sent(err, true)
	}
	return resp.StatusCode, body, nil
}

// errSent marks a transport error that came after the request was written in full: the
// carrier may have received and acted on it (a call created, whose answer we lost).
var errSent = errors.New("after the request was sent")

func sent(err error, wrote bool) error {
	if !wrote {
		return err
	}
	return &sentError{err}
}

type sentError struct{ err error }

func (e *sentError) Error() string   { return e.err.Error() }
func (e *sentError) Unwrap() []error { return []error{e.err, errSent} }

// scrubber removes secrets from text a carrier or the network hands us before it goes into
// a Result: a misbehaving server may echo our Authorization header back in its error.
type scrubber []string

func (s scrubber) string(v string) string {
	for _, secret := range s {
		if secret != "" {
			v = strings.ReplaceAll(v, secret, redactedMark)
		}
	}
	return v
}

func (s scrubber) bytes(b []byte) []byte {
	if !slices.ContainsFunc(s, func(secret string) bool { return secret != "" && strings.Contains(string(b), secret) }) {
		return b
	}
	return []byte(s.string(string(b)))
}

// transport classifies a request that got no answer, with its text scrubbed before
// ClassifyError clips it (clipping first could leave half a secret behind).
func (s scrubber) transport(err error) Result {
	return ClassifyError(&scrubbedError{err: err, msg: s.string(err.Error())})
}

type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// invalid is the Result for a request we refuse to send. It is Final: the fault is ours (or
// the number's), and another carrier would get the same request.
func invalid(reason, format string, args ...any) Result {
	return Result{Outcome: Final, Reason: reason, Detail: clip(fmt.Sprintf(format, args...))}
}

// check validates what every kind needs; it returns the caller id to use.
func (r PlaceRequest) check(cfgFrom string) (string, Result, bool) {
	from := r.From
	if from == "" {
		from = cfgFrom
	}
	switch {
	case !IsE164(r.To):
		return "", invalid("invalid number", "to %q is not an E.164 number", r.To), false
	case !IsE164(from):
		return "", invalid("invalid request", "from %q is not an E.164 number", from), false
	case r.RingTimeout < 0:
		return "", invalid("invalid request", "negative ring timeout %v", r.RingTimeout), false
	}
	if msg := absoluteURL(r.StatusURL, "http", "https"); msg != "" {
		return "", invalid("invalid request", "status url %s", msg), false
	}
	return from, Result{}, true
}

// absoluteURL returns why s is not an absolute URL with one of schemes, or "".
func absoluteURL(s string, schemes ...string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "is empty"
	case err != nil:
		return "is not a URL"
	case !slices.Contains(schemes, u.Scheme) || u.Host == "":
		return fmt.Sprintf("%q is not an absolute %s URL", s, strings.Join(schemes, " or "))
	}
	return ""
}

// ringSeconds turns a ring timeout into the whole seconds carriers take (5 to 600), or 0
// for the carrier's default.
func ringSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	s := int((d + time.Second - 1) / time.Second)
	return min(max(s, 5), 600)
}

// hangupResult adjusts a hangup's classification: hanging up twice is harmless, so a hangup
// that may not have arrived can always be sent again.
func hangupResult(r Result) Result {
	if r.Outcome == CarrierFault && (r.HTTPStatus == 0 || r.HTTPStatus >= 500) {
		r.Retryable = true
	}
	return r
}
