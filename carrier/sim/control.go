package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// InboundRequest asks the simulator to call Switchboard.
type InboundRequest struct {
	// Kind is twilio or telnyx.
	Kind Kind `json:"kind"`
	// From and To default to +14155550100 and +14155550199.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// StatusCallbackEvents (Twilio) are the events reported to Config.TwilioStatusURL;
	// like a Twilio number's status callback, by default only completed.
	StatusCallbackEvents []string `json:"status_callback_events,omitempty"`
	// HangupAfter, when set, is how long this caller stays once its call is live (waiting in
	// a queue included), instead of Config.HangupAfter. JSON: nanoseconds.
	HangupAfter time.Duration `json:"hangup_after,omitempty"`
}

// Inbound places a call to Switchboard and returns its sid (Twilio CallSid or Telnyx
// call_control_id). Twilio: the voice webhook (Config.TwilioVoiceURL) is asked for TwiML,
// which the call then obeys. Telnyx: call.initiated goes to Config.TelnyxWebhookURL and the
// call waits for the answer command, until it gives up after 30 s (or Config.RingTimeout).
func (c *Carrier) Inbound(req InboundRequest) (string, error) {
	from, to := req.From, req.To
	if from == "" {
		from = "+14155550100"
	}
	if to == "" {
		to = "+14155550199"
	}
	k := c.newCall(req.Kind, true, from, to)
	if req.HangupAfter > 0 {
		k.hangupAfter = req.HangupAfter
	}
	switch req.Kind {
	case Twilio:
		if c.cfg.TwilioVoiceURL == "" {
			return "", errors.New("sim: no Twilio voice URL configured for inbound calls")
		}
		k.sid = "CA" + randomHex(16)
		k.voiceMethod, k.voiceURL = http.MethodPost, c.cfg.TwilioVoiceURL
		k.statusMethod, k.statusURL = http.MethodPost, c.cfg.TwilioStatusURL
		k.events = statusEvents(req.StatusCallbackEvents)
	case Telnyx:
		if c.cfg.TelnyxWebhookURL == "" {
			return "", errors.New("sim: no Telnyx webhook URL configured for inbound calls")
		}
		k.sid, k.legID, k.sessionID = newUUID(), newUUID(), newUUID()
		k.webhookURL = c.cfg.TelnyxWebhookURL
		k.timeout = c.ringTimeout(30 * time.Second)
	default:
		return "", fmt.Errorf("sim: unknown carrier kind %q", req.Kind)
	}
	if err := c.start(k); err != nil {
		return "", err
	}
	c.log.Info("inbound call", "kind", k.kind, "sid", k.sid, "from", from, "to", to)
	return k.sid, nil
}

// Hangup makes the far end of a call hang up (or, before an answer, decline or give up).
func (c *Carrier) Hangup(sid string) error {
	k, err := c.call(sid)
	if err != nil {
		return err
	}
	return k.act(c.ctx, &action{op: actFarHangup})
}

// SendDigits makes the far end press keys: a dtmf message on the call's open media stream
// per digit, and for Telnyx a call.dtmf.received webhook too.
func (c *Carrier) SendDigits(sid, digits string) error {
	k, err := c.call(sid)
	if err != nil {
		return err
	}
	notDTMF := func(r rune) bool { return !strings.ContainsRune("0123456789*#ABCD", r) }
	if digits == "" || strings.IndexFunc(digits, notDTMF) >= 0 {
		return fmt.Errorf("sim: %q are not DTMF digits", digits)
	}
	k.mu.Lock()
	open := k.media.open > 0
	k.mu.Unlock()
	if !open {
		return errors.New("sim: the call has no open media stream")
	}
	for _, d := range digits {
		select {
		case k.digits <- string(d):
		default:
			return errors.New("sim: too many digits waiting")
		}
		if k.kind == Telnyx {
			k.telnyxWebhook("call.dtmf.received", func(p *telnyxPayload) { p.Digit = string(d) })
		}
	}
	return nil
}

// Report is what the simulator knows about one call.
type Report struct {
	SID             string    `json:"sid"`
	Kind            Kind      `json:"kind"`
	Direction       string    `json:"direction"` // outbound or inbound, from Switchboard's side
	From            string    `json:"from"`
	To              string    `json:"to"`
	Status          string    `json:"status"` // Twilio's status names, for both kinds
	SIPResponseCode int       `json:"sip_response_code,omitempty"`
	HangupCause     string    `json:"hangup_cause,omitempty"`
	HangupSource    string    `json:"hangup_source,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	AnsweredAt      time.Time `json:"answered_at,omitzero"`
	EndedAt         time.Time `json:"ended_at,omitzero"`
	StreamURL       string    `json:"stream_url,omitempty"`
	StreamsOpened   int       `json:"streams_opened"`
	StreamsOpen     int       `json:"streams_open"` // open now

	FramesSent     int `json:"frames_sent"`
	FramesReceived int `json:"frames_received"`
	FramesLost     int `json:"frames_lost"`
	BytesReceived  int `json:"bytes_received"`
	// DominantHz is the strongest frequency in the middle 200 ms of the audio received, and
	// DominantPower its power (about amplitude² for a pure tone); 0 when nothing was heard.
	DominantHz    float64 `json:"dominant_hz"`
	DominantPower float64 `json:"dominant_power"`
	// LoudestHz is the strongest frequency in the loudest 200 ms of the audio received, and
	// LoudestPower its power: a sound heard only now and then (the hold tone's beeps) shows
	// here even when the middle of the audio is quiet. 0 when nothing was heard.
	LoudestHz    float64 `json:"loudest_hz"`
	LoudestPower float64 `json:"loudest_power"`
	// ToneGaps, with Config.WatchHz, are the stretches of the whole call, after the watched
	// tone was first heard, during which it was absent from what the call received (no frame
	// arrived, or frames without the tone), by arrival time; the shortest counted is
	// media.ToneGapMin. A hand-over between instances shows as one gap. Empty when the tone
	// never stopped, or was never heard, or nothing is watched.
	ToneGaps []media.ToneGap `json:"tone_gaps,omitempty"`
	// ToneHeardAt, with Config.WatchHz, is when the last frame with the watched tone arrived:
	// a drill tells a call whose audio is back from one still silent by it. Zero if never.
	ToneHeardAt    time.Time `json:"tone_heard_at,omitzero"`
	MarksReceived  int       `json:"marks_received"`
	ClearsReceived int       `json:"clears_received"`
	DigitsSent     string    `json:"digits_sent,omitempty"`
	// StatusLookups counts the REST status look-ups of the call (Twilio's fetch, Telnyx's
	// retrieve call status): what a reconciler costs the carrier.
	StatusLookups int `json:"status_lookups"`
	// Notes are what went wrong or was skipped: application errors, failed streams.
	Notes     []string   `json:"notes,omitempty"`
	Callbacks []Delivery `json:"callbacks"`
}

// CallReport reports on one call.
func (c *Carrier) CallReport(sid string) (Report, error) {
	k, err := c.call(sid)
	if err != nil {
		return Report{}, err
	}
	r := k.report()
	c.mu.Lock()
	for _, d := range c.deliveries {
		if d.CallSID == sid {
			r.Callbacks = append(r.Callbacks, d)
		}
	}
	c.mu.Unlock()
	return r, nil
}

// Calls reports on every call, oldest first, without their callbacks.
func (c *Carrier) Calls() []Report {
	c.mu.Lock()
	calls := make([]*call, len(c.order))
	for i, sid := range c.order {
		calls[i] = c.calls[sid]
	}
	c.mu.Unlock()
	out := make([]Report, len(calls))
	for i, k := range calls {
		out[i] = k.report()
	}
	return out
}

func (k *call) report() Report {
	k.mu.Lock()
	defer k.mu.Unlock()
	direction := "outbound"
	if k.inbound {
		direction = "inbound"
	}
	m := &k.media
	hz, power := m.dominant()
	loudHz, loudPower := m.loudest()
	var gaps []media.ToneGap
	var heard time.Time
	if m.watch != nil {
		gaps, heard = m.watch.Gaps(), m.watch.LastHeard()
	}
	return Report{
		SID: k.sid, Kind: k.kind, Direction: direction, From: k.from, To: k.to, Status: k.status,
		SIPResponseCode: k.sipCode, HangupCause: k.cause, HangupSource: k.source,
		CreatedAt: k.created, AnsweredAt: k.answeredAt, EndedAt: k.endedAt,
		StreamURL: m.url, StreamsOpened: m.streams, StreamsOpen: m.open, FramesSent: m.framesSent,
		FramesReceived: m.framesReceived, FramesLost: m.framesLost, BytesReceived: m.bytesReceived,
		DominantHz: hz, DominantPower: power, LoudestHz: loudHz, LoudestPower: loudPower,
		ToneGaps: gaps, ToneHeardAt: heard, MarksReceived: m.marks, ClearsReceived: m.clears,
		DigitsSent: m.digitsSent, Notes: append([]string(nil), k.notes...), StatusLookups: k.lookups,
	}
}

// The control API: the same things over HTTP, for cmd/carriersim, drills and curl.

func (c *Carrier) handleStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.Stats())
}

func (c *Carrier) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.Faults())
}

// handleSetFaults changes the faults named in the JSON body and keeps the others.
func (c *Carrier) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	f := c.Faults()
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	if err := c.SetFaults(f); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (c *Carrier) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	_ = c.SetFaults(Faults{}) // no faults is always a valid set
	writeJSON(w, http.StatusOK, Faults{})
}

func (c *Carrier) handleInbound(w http.ResponseWriter, r *http.Request) {
	var req InboundRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	sid, err := c.Inbound(req)
	if err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	c.writeReport(w, http.StatusCreated, sid)
}

func (c *Carrier) handleCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.Calls())
}

func (c *Carrier) handleCall(w http.ResponseWriter, r *http.Request) {
	c.writeReport(w, http.StatusOK, r.PathValue("sid"))
}

func (c *Carrier) handleHangup(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	if err := c.Hangup(sid); err != nil && !errors.Is(err, errEnded) {
		controlError(w, statusOf(err), err)
		return
	}
	c.writeReport(w, http.StatusOK, sid)
}

func (c *Carrier) handleDigits(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Digits string `json:"digits"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	sid := r.PathValue("sid")
	if err := c.SendDigits(sid, req.Digits); err != nil {
		controlError(w, statusOf(err), err)
		return
	}
	c.writeReport(w, http.StatusOK, sid)
}

func (c *Carrier) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.Delivered())
}

func (c *Carrier) handlePublicKey(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"public_key": c.PublicKeyBase64()})
}

// handleCredentials shows the simulator's own generated credentials, for wiring a
// Switchboard to it.
func (c *Carrier) handleCredentials(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"account_sid": c.cfg.AccountSID, "auth_token": c.cfg.AuthToken,
		"api_key": c.cfg.TelnyxAPIKey, "connection_id": c.cfg.ConnectionID,
		"public_key": c.PublicKeyBase64(),
	})
}

func (c *Carrier) writeReport(w http.ResponseWriter, status int, sid string) {
	rep, err := c.CallReport(sid)
	if err != nil {
		controlError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, status, rep)
}

func statusOf(err error) int {
	if errors.Is(err, ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusConflict
}

func controlError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
