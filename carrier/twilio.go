package carrier

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TwilioClient places and ends calls through the Twilio-compatible REST API
// (https://www.twilio.com/docs/voice/api/call-resource). It is safe for concurrent use.
type TwilioClient struct {
	id       string
	accounts string // {api_url}/2010-04-01/Accounts/{AccountSid}
	sid      string
	token    string
	from     string
	timeout  time.Duration
	hc       *http.Client
	scrub    scrubber
}

// NewTwilioClient returns a client for cfg, which should have passed Normalize (NewClient
// does both). hc may be nil, which means NewHTTPClient(); either way redirects are not
// followed.
func NewTwilioClient(cfg Config, hc *http.Client) *TwilioClient {
	token := cfg.AuthToken
	return &TwilioClient{
		id:       cfg.ID,
		accounts: strings.TrimRight(cfg.APIURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID),
		sid:      cfg.AccountSID,
		token:    token,
		from:     cfg.From,
		timeout:  requestTimeout(cfg),
		hc:       clientFor(hc),
		scrub:    scrubber{token, base64.StdEncoding.EncodeToString([]byte(cfg.AccountSID + ":" + token))},
	}
}

var twilioEvents = []string{"initiated", "ringing", "answered", "completed"}

// Place creates the call: POST {api_url}/2010-04-01/Accounts/{sid}/Calls.json. Twilio does
// not document a 5xx or a timeout on this request as safe to repeat (the call may exist),
// so those results are not Retryable; a dial failure or a 429 is.
func (c *TwilioClient) Place(ctx context.Context, req PlaceRequest) (Placed, Result) {
	from, r, ok := req.check(c.from)
	if !ok {
		return Placed{}, r
	}
	if msg := absoluteURL(req.VoiceURL, "http", "https"); msg != "" {
		return Placed{}, invalid("invalid request", "voice url %s", msg)
	}
	if req.VoiceFallbackURL != "" {
		if msg := absoluteURL(req.VoiceFallbackURL, "http", "https"); msg != "" {
			return Placed{}, invalid("invalid request", "voice fallback url %s", msg)
		}
	}
	events := req.StatusEvents
	if len(events) == 0 {
		events = twilioEvents
	}
	for _, ev := range events {
		if !slices.Contains(twilioEvents, ev) {
			return Placed{}, invalid("invalid request", "unknown status event %q", ev)
		}
	}

	form := url.Values{
		"To":                   {req.To},
		"From":                 {from},
		"Url":                  {req.VoiceURL},
		"Method":               {http.MethodPost},
		"StatusCallback":       {req.StatusURL},
		"StatusCallbackMethod": {http.MethodPost},
		"StatusCallbackEvent":  events,
	}
	if req.VoiceFallbackURL != "" {
		form.Set("FallbackUrl", req.VoiceFallbackURL)
		form.Set("FallbackMethod", http.MethodPost)
	}
	if s := ringSeconds(req.RingTimeout); s > 0 {
		form.Set("Timeout", strconv.Itoa(s))
	}
	status, body, err := c.post(ctx, c.accounts+"/Calls.json", form)
	if err != nil {
		return Placed{}, c.scrub.transport(err)
	}
	r = ClassifyTwilio(status, c.scrub.bytes(body))
	if r.Outcome != Accepted {
		return Placed{}, r
	}
	var created struct {
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &created); err != nil || !validToken(created.SID, 128, false) {
		// The carrier says it took the call but we cannot tell which call: treat it as a
		// fault (an api_url that lands on some web page answers 200 too), not Retryable.
		return Placed{}, Result{Outcome: CarrierFault, Reason: "bad response", HTTPStatus: status,
			MaybeCreated: true, Detail: "no usable call sid in the answer"}
	}
	return Placed{CarrierCallID: created.SID, Status: created.Status}, r
}

// Hangup ends the call: POST Status=completed to .../Calls/{CallSid}.json. A call that has
// already ended (Twilio 21220) is Accepted.
func (c *TwilioClient) Hangup(ctx context.Context, carrierCallID string) Result {
	_, r := c.HangupStatus(ctx, carrierCallID)
	return r
}

// HangupStatus is Hangup that also returns the call's status as Twilio's answer gives it
// (the answer is the Call resource): "completed" once ended, "" when the answer had none.
func (c *TwilioClient) HangupStatus(ctx context.Context, carrierCallID string) (string, Result) {
	if !validToken(carrierCallID, 128, false) {
		return "", invalid("invalid request", "call sid %q", carrierCallID)
	}
	status, body, err := c.post(ctx, c.accounts+"/Calls/"+url.PathEscape(carrierCallID)+".json",
		url.Values{"Status": {"completed"}})
	if err != nil {
		return "", hangupResult(c.scrub.transport(err))
	}
	r := ClassifyTwilio(status, c.scrub.bytes(body))
	if r.Code == twilioNotInProgress {
		r.Outcome, r.Reason = Accepted, "already ended"
	}
	var resource struct {
		Status string `json:"status"`
	}
	if r.Outcome == Accepted && status/100 == 2 && json.Unmarshal(body, &resource) == nil {
		return resource.Status, hangupResult(r)
	}
	return "", hangupResult(r)
}

// Redirect replaces the TwiML a live call is executing with twiml (an inline document):
// POST Twiml=... to .../Calls/{CallSid}.json, Twilio's "Update a Call resource". The caller
// stays connected and the new document runs at once, so a new <Connect><Stream> moves the
// call's media stream. A call that is no longer in progress (Twilio 21220, "Invalid call
// state") is Final with Gone() true: the call is over, not the carrier at fault. Sending the
// same document again only restarts it, so a 5xx or a lost answer is Retryable.
func (c *TwilioClient) Redirect(ctx context.Context, callSid, twiml string) Result {
	if !validToken(callSid, 128, false) {
		return invalid("invalid request", "call sid %q", callSid)
	}
	if twiml == "" {
		return invalid("invalid request", "empty twiml")
	}
	status, body, err := c.post(ctx, c.accounts+"/Calls/"+url.PathEscape(callSid)+".json",
		url.Values{"Twiml": {twiml}})
	if err != nil {
		return hangupResult(c.scrub.transport(err))
	}
	r := ClassifyTwilio(status, c.scrub.bytes(body))
	if r.Code == twilioNotInProgress && numberVerdict(status) {
		r.Outcome = Final
	}
	return hangupResult(r)
}

func (c *TwilioClient) post(ctx context.Context, u string, form url.Values) (int, []byte, error) {
	return roundTrip(ctx, c.hc, c.timeout, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.sid, c.token)
		return req, nil
	})
}

// String, GoString and Format have value receivers so that a dereferenced client prints
// safely too.
func (c TwilioClient) String() string   { return fmt.Sprintf("twilio client for carrier %q", c.id) }
func (c TwilioClient) GoString() string { return fmt.Sprintf("&carrier.TwilioClient{id:%q}", c.id) }

// Format keeps the token out of every verb, %+v and %d included.
func (c TwilioClient) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, c.GoString()) // a fmt.State write error has nowhere to go
		return
	}
	_, _ = io.WriteString(f, c.String()) // as above
}
