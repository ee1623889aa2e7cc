package sim

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
)

const twilioAPIVersion = "2010-04-01"

// handleTwilioCreate places a call: POST /2010-04-01/Accounts/{AccountSid}/Calls.json.
func (c *Carrier) handleTwilioCreate(w http.ResponseWriter, r *http.Request) {
	if !c.twilioAuth(w, r) {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeAPIError(w, Twilio, http.StatusBadRequest, 0, "The request body could not be parsed")
		return
	}
	f := r.PostForm
	to, from := f.Get("To"), f.Get("From")
	switch {
	case to == "":
		writeAPIError(w, Twilio, http.StatusBadRequest, 21201, "No 'To' number is specified")
		return
	case from == "":
		writeAPIError(w, Twilio, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case f.Get("Url") == "" && f.Get("Twiml") == "":
		writeAPIError(w, Twilio, http.StatusBadRequest, 21205, "Url parameter is required.")
		return
	case outcomeFor(to) == invalid:
		writeAPIError(w, Twilio, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+to)
		return
	}
	timeout := 60
	if v := f.Get("Timeout"); v != "" {
		var err error
		if timeout, err = strconv.Atoi(v); err != nil || timeout < 1 || timeout > 600 {
			writeAPIError(w, Twilio, http.StatusBadRequest, 21208, "Invalid Timeout") // twilio.com/docs/api/errors/21208
			return
		}
	}
	k := c.newCall(Twilio, false, from, to)
	k.sid = "CA" + randomHex(16)
	k.timeout = c.ringTimeout(time.Duration(timeout+5) * time.Second) // Twilio adds a 5 s buffer
	k.voiceMethod, k.voiceURL, k.twiml = methodOr(f.Get("Method")), f.Get("Url"), f.Get("Twiml")
	k.fallbackMethod, k.fallbackURL = methodOr(f.Get("FallbackMethod")), f.Get("FallbackUrl")
	k.statusMethod, k.statusURL = methodOr(f.Get("StatusCallbackMethod")), f.Get("StatusCallback")
	k.events = statusEvents(f["StatusCallbackEvent"])
	resource := k.twilioResource()
	if err := c.start(k); err != nil {
		writeAPIError(w, Twilio, http.StatusServiceUnavailable, 0, "")
		return
	}
	c.log.Info("twilio call created", "sid", k.sid, "to", to)
	writeJSON(w, http.StatusCreated, resource)
}

// handleTwilioUpdate changes a call: POST .../Calls/{CallSid}.json. Status=completed hangs
// it up (canceled only while it rings); Twiml (inline) or Url (+Method, fetched and signed as
// the voice webhook is) replaces the TwiML a live call is executing: an open
// <Connect><Stream> says stop and closes, and the new document runs at once. Updating the
// TwiML of a call that is not in progress is Twilio's 21220 (400).
func (c *Carrier) handleTwilioUpdate(w http.ResponseWriter, r *http.Request) {
	k, ok := c.twilioCall(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeAPIError(w, Twilio, http.StatusBadRequest, 0, "The request body could not be parsed")
		return
	}
	f := r.PostForm
	switch st := f.Get("Status"); st {
	case "":
	case statusCanceled, statusCompleted:
		k.mu.Lock()
		answered := !k.answeredAt.IsZero()
		k.mu.Unlock()
		if st == statusCanceled && answered {
			break // Twilio only cancels calls that are queued or ringing
		}
		if err := k.act(r.Context(), &action{op: actHangup}); err != nil && !errors.Is(err, errEnded) {
			writeAPIError(w, Twilio, http.StatusServiceUnavailable, 0, "")
			return
		}
		writeJSON(w, http.StatusOK, k.twilioResource())
		return
	default:
		writeAPIError(w, Twilio, http.StatusBadRequest, 21218, "Invalid Status: "+st)
		return
	}
	if f.Get("Url") != "" || f.Get("Twiml") != "" {
		if !c.twilioRedirect(w, r, k, f) {
			return
		}
	}
	writeJSON(w, http.StatusOK, k.twilioResource())
}

// twilioRedirect replaces a live call's TwiML; it has answered the request if it returns
// false.
func (c *Carrier) twilioRedirect(w http.ResponseWriter, r *http.Request, k *call, f url.Values) bool {
	var conv func(context.Context)
	if doc := f.Get("Twiml"); doc != "" {
		parsed, err := parseTwiML([]byte(doc))
		if err != nil {
			writeAPIError(w, Twilio, http.StatusBadRequest, 12100, "Twiml is not a valid TwiML document: "+err.Error())
			return false
		}
		conv = func(ctx context.Context) { k.execute(ctx, parsed) }
	} else {
		target := f.Get("Url")
		if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			writeAPIError(w, Twilio, http.StatusBadRequest, 21205, "Url is not a valid URL: "+target)
			return false
		}
		method := methodOr(f.Get("Method"))
		conv = func(ctx context.Context) {
			doc, err := k.fetchTwiMLFrom(ctx, method, target, nil)
			if err != nil {
				if ctx.Err() == nil {
					k.note("application error: " + err.Error())
				}
				return
			}
			k.execute(ctx, doc)
		}
	}
	k.mu.Lock()
	answered := !k.answeredAt.IsZero()
	k.mu.Unlock()
	err := errNotApplicable
	if answered {
		err = k.act(r.Context(), &action{op: actReplace, conv: conv})
	}
	switch {
	case errors.Is(err, errEnded), errors.Is(err, errNotApplicable):
		writeAPIError(w, Twilio, http.StatusBadRequest, 21220, "Call is not in-progress. Cannot redirect.")
		return false
	case err != nil:
		writeAPIError(w, Twilio, http.StatusServiceUnavailable, 0, "")
		return false
	}
	c.log.Info("twilio call redirected", "sid", k.sid)
	return true
}

// handleTwilioFetch answers GET .../Calls/{CallSid}.json.
func (c *Carrier) handleTwilioFetch(w http.ResponseWriter, r *http.Request) {
	if k, ok := c.twilioCall(w, r); ok {
		k.countLookup()
		writeJSON(w, http.StatusOK, k.twilioResource())
	}
}

func (k *call) countLookup() {
	k.mu.Lock()
	k.lookups++
	k.mu.Unlock()
}

func (c *Carrier) twilioCall(w http.ResponseWriter, r *http.Request) (*call, bool) {
	if !c.twilioAuth(w, r) {
		return nil, false
	}
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	k, err := c.call(sid)
	if !ok || err != nil || k.kind != Twilio {
		writeAPIError(w, Twilio, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return nil, false
	}
	return k, true
}

// twilioAuth checks HTTP Basic AccountSid:AuthToken and the account in the path.
func (c *Carrier) twilioAuth(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || !equal(user, c.cfg.AccountSID) || !equal(pass, c.cfg.AuthToken) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeAPIError(w, Twilio, http.StatusUnauthorized, 0, "")
		return false
	}
	if r.PathValue("account") != c.cfg.AccountSID {
		writeAPIError(w, Twilio, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return false
	}
	return true
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func methodOr(m string) string {
	if strings.EqualFold(m, http.MethodGet) {
		return http.MethodGet
	}
	return http.MethodPost
}

// statusEvents reads StatusCallbackEvent, repeated or space-separated; none means completed.
func statusEvents(vs []string) map[string]bool {
	events := map[string]bool{}
	for _, v := range vs {
		for _, e := range strings.Fields(v) {
			switch e {
			case evInitiated, evRinging, evAnswered, evCompleted:
				events[e] = true
			}
		}
	}
	if len(events) == 0 {
		events[evCompleted] = true
	}
	return events
}

// twilioCallJSON is the Call resource as Twilio's REST API returns it.
type twilioCallJSON struct {
	SID             string            `json:"sid"`
	Annotation      *string           `json:"annotation"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	ParentCallSID   *string           `json:"parent_call_sid"`
	AccountSID      string            `json:"account_sid"`
	To              string            `json:"to"`
	ToFormatted     string            `json:"to_formatted"`
	From            string            `json:"from"`
	FromFormatted   string            `json:"from_formatted"`
	PhoneNumberSID  *string           `json:"phone_number_sid"`
	Status          string            `json:"status"`
	StartTime       *string           `json:"start_time"`
	EndTime         *string           `json:"end_time"`
	Duration        *string           `json:"duration"`
	Price           *string           `json:"price"`
	PriceUnit       string            `json:"price_unit"`
	Direction       string            `json:"direction"`
	AnsweredBy      *string           `json:"answered_by"`
	APIVersion      string            `json:"api_version"`
	ForwardedFrom   *string           `json:"forwarded_from"`
	GroupSID        *string           `json:"group_sid"`
	CallerName      *string           `json:"caller_name"`
	QueueTime       string            `json:"queue_time"`
	TrunkSID        *string           `json:"trunk_sid"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

func (k *call) twilioResource() twilioCallJSON {
	k.mu.Lock()
	defer k.mu.Unlock()
	rfc2822 := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.UTC().Format(time.RFC1123Z)
		return &s
	}
	status := k.status
	if status == statusInitiated { // the REST resource has no initiated status
		status = statusQueued
	}
	updated := k.created
	for _, t := range []time.Time{k.answeredAt, k.endedAt} {
		if t.After(updated) {
			updated = t
		}
	}
	var start *string
	if status != statusQueued {
		start = rfc2822(k.created)
	}
	var duration *string
	if !k.endedAt.IsZero() {
		d := strconv.Itoa(k.callDuration())
		duration = &d
	}
	uri := fmt.Sprintf("/%s/Accounts/%s/Calls/%s", twilioAPIVersion, k.c.cfg.AccountSID, k.sid)
	return twilioCallJSON{
		SID: k.sid, DateCreated: *rfc2822(k.created), DateUpdated: *rfc2822(updated),
		AccountSID: k.c.cfg.AccountSID, To: k.to, ToFormatted: k.to, From: k.from, FromFormatted: k.from,
		Status: status, StartTime: start, EndTime: rfc2822(k.endedAt), Duration: duration,
		PriceUnit: "USD", Direction: k.twilioDirection(), APIVersion: twilioAPIVersion, QueueTime: "0",
		URI: uri + ".json",
		SubresourceURIs: map[string]string{
			"notifications": uri + "/Notifications.json",
			"recordings":    uri + "/Recordings.json",
			"streams":       uri + "/Streams.json",
		},
	}
}

func (k *call) twilioDirection() string {
	if k.inbound {
		return "inbound"
	}
	return "outbound-api"
}

// callDuration is the answered time in whole seconds, rounded up; k.mu is held.
func (k *call) callDuration() int {
	if k.answeredAt.IsZero() || k.endedAt.IsZero() {
		return 0
	}
	return int(math.Ceil(k.endedAt.Sub(k.answeredAt).Seconds()))
}

// twilioParams are the parameters every request about the call carries; k.mu is held.
func (k *call) twilioParams() url.Values {
	return url.Values{
		"AccountSid": {k.c.cfg.AccountSID},
		"ApiVersion": {twilioAPIVersion},
		"CallSid":    {k.sid},
		"CallStatus": {k.status},
		"Called":     {k.to},
		"Caller":     {k.from},
		"Direction":  {k.twilioDirection()},
		"From":       {k.from},
		"To":         {k.to},
	}
}

// twilioCallback fires a status callback for ev if the call asked for that event.
func (k *call) twilioCallback(ev string) {
	if !k.events[ev] || k.statusURL == "" {
		return
	}
	now := time.Now()
	k.mu.Lock()
	seq := k.seq
	k.seq++
	status := k.status
	v := k.twilioParams()
	v.Set("Timestamp", now.UTC().Format(time.RFC1123Z))
	v.Set("CallbackSource", "call-progress-events")
	v.Set("SequenceNumber", strconv.Itoa(seq))
	if ev == evCompleted {
		d := k.callDuration()
		v.Set("CallDuration", strconv.Itoa(d))
		v.Set("SipResponseCode", strconv.Itoa(k.sipCode))
		if status == statusCompleted {
			v.Set("Duration", strconv.Itoa((d+59)/60))
		}
	}
	k.mu.Unlock()
	method, target, body, h := delivery.TwilioRequest(k.c.cfg.AuthToken, k.statusMethod, k.statusURL, v, newUUID())
	k.queue(&callback{
		kind: Twilio, callSID: k.sid, eventID: fmt.Sprintf("%s:%d:%s", k.sid, seq, status),
		event: status, seq: seq, method: method, url: target,
		render: func(int) ([]byte, http.Header) { return body, h },
	}, now)
}

// fetchTwiML asks Switchboard what to do with the call (or takes the TwiML the call was
// created with). Anything but a 2xx with a valid document is Twilio's "application error".
func (k *call) fetchTwiML(ctx context.Context) (*twimlNode, error) {
	if k.twiml != "" {
		return parseTwiML([]byte(k.twiml))
	}
	doc, err := k.fetchTwiMLFrom(ctx, k.voiceMethod, k.voiceURL, nil)
	if err != nil && k.fallbackURL != "" && ctx.Err() == nil {
		// "If Twilio is unable to retrieve or execute TwiML from your web server, a request
		// is immediately made to the ... Fallback URL", with ErrorCode and ErrorUrl.
		k.note("voice url failed, asking the fallback url: " + err.Error())
		return k.fetchTwiMLFrom(ctx, k.fallbackMethod, k.fallbackURL, url.Values{"ErrorCode": {"11200"}, "ErrorUrl": {k.voiceURL}})
	}
	return doc, err
}

// fetchTwiMLFrom fetches TwiML from voiceURL as a voice webhook: signed, with the call's
// parameters and extra ones (a fallback request's ErrorCode and ErrorUrl).
func (k *call) fetchTwiMLFrom(ctx context.Context, voiceMethod, voiceURL string, extra url.Values) (*twimlNode, error) {
	k.mu.Lock()
	v := k.twilioParams()
	k.mu.Unlock()
	for key, vals := range extra {
		v[key] = vals
	}
	method, target, body, h := delivery.TwilioRequest(k.c.cfg.AuthToken, voiceMethod, voiceURL, v, newUUID())
	k.c.count(func(s *Stats) { s.VoiceRequests++ })
	doc, err := func() (*twimlNode, error) {
		if _, out := k.c.faultsNow(); out {
			return nil, errors.New("11200: carrier outage, TwiML not fetched")
		}
		status, answer, err := k.c.out.Exchange(ctx, method, target, body, h)
		if delivery.IsConnectError(err) { // Twilio makes two connection attempts
			status, answer, err = k.c.out.Exchange(ctx, method, target, body, h)
		}
		switch {
		case err != nil:
			return nil, fmt.Errorf("11200: %s: %w", voiceURL, err)
		case status < 200 || status > 299:
			return nil, fmt.Errorf("11200: %s answered HTTP %d", voiceURL, status)
		}
		return parseTwiML(answer)
	}()
	if err != nil {
		k.c.count(func(s *Stats) { s.VoiceFailed++ })
	}
	return doc, err
}

// twilioOutbound is an answered outbound Twilio call: fetch the Url and obey it.
func (k *call) twilioOutbound(ctx context.Context) {
	doc, err := k.fetchTwiML(ctx)
	if err != nil {
		if ctx.Err() == nil {
			k.note("application error: " + err.Error())
		}
		return
	}
	k.execute(ctx, doc)
}

// twilioInbound is an inbound Twilio call: the voice webhook decides, and the call is
// answered when there is something to do, even if it is only to say an application error
// occurred.
func (k *call) twilioInbound(ctx context.Context) {
	doc, err := k.fetchTwiML(ctx)
	if ctx.Err() != nil {
		return
	}
	k.answer()
	if err != nil {
		k.note("application error: " + err.Error())
		return
	}
	k.execute(ctx, doc)
}
