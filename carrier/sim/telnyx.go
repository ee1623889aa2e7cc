package sim

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
)

// telnyxCommand is the body of a Telnyx dial or call command; each reads the fields it knows.
type telnyxCommand struct {
	ConnectionID string `json:"connection_id"`
	From         string `json:"from"`
	To           any    `json:"to"` // a number, or a list of them (the first is dialled)
	WebhookURL   string `json:"webhook_url"`
	ClientState  string `json:"client_state"`
	TimeoutSecs  int    `json:"timeout_secs"`
	CommandID    string `json:"command_id"`
	StreamURL    string `json:"stream_url"`
	StreamCodec  string `json:"stream_codec"`
	// Accepted and not obeyed: the simulator streams its own audio as the inbound track
	// and always takes audio back.
	StreamTrack             string `json:"stream_track"`
	StreamBidirectionalMode string `json:"stream_bidirectional_mode"`
	Cause                   string `json:"cause"` // reject: CALL_REJECTED or USER_BUSY
}

func (d *telnyxCommand) to() string {
	switch v := d.To.(type) {
	case string:
		return v
	case []any:
		if len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
	}
	return ""
}

// handleTelnyxDial places a call: POST /v2/calls.
func (c *Carrier) handleTelnyxDial(w http.ResponseWriter, r *http.Request) {
	if !c.telnyxAuth(w, r) {
		return
	}
	var d telnyxCommand
	if !decodeTelnyx(w, r, &d) {
		return
	}
	c.once(w, r, "dial:"+d.CommandID, d.CommandID != "", func() (int, any) {
		return c.telnyxDial(&d)
	})
}

func (c *Carrier) telnyxDial(d *telnyxCommand) (int, any) {
	to := d.to()
	unprocessable := func(pointer, detail string) (int, any) {
		return errorBody(Telnyx, apiError{status: http.StatusUnprocessableEntity, message: detail, pointer: pointer})
	}
	webhook := d.WebhookURL
	if webhook == "" {
		webhook = c.cfg.TelnyxWebhookURL
	}
	switch {
	case d.ConnectionID != c.cfg.ConnectionID:
		return unprocessable("/connection_id", "The connection_id is not valid for this account")
	case d.From == "":
		return unprocessable("/from", "The 'from' parameter is required")
	case to == "":
		return unprocessable("/to", "The 'to' parameter is required")
	case outcomeFor(to) == invalid:
		return unprocessable("/to", "The 'to' phone number is invalid: "+to)
	case d.ClientState != "" && !isBase64(d.ClientState):
		return unprocessable("/client_state", "client_state must be a valid Base-64 encoded string")
	case d.TimeoutSecs != 0 && (d.TimeoutSecs < 5 || d.TimeoutSecs > 600):
		return unprocessable("/timeout_secs", "timeout_secs must be between 5 and 600")
	case d.StreamCodec != "" && d.StreamCodec != "PCMU":
		return unprocessable("/stream_codec", "The simulator streams PCMU only")
	case webhook == "":
		return unprocessable("/webhook_url", "No webhook_url given and none configured for the connection")
	}
	k := c.newCall(Telnyx, false, d.From, to)
	k.sid, k.legID, k.sessionID = newUUID(), newUUID(), newUUID()
	k.webhookURL = webhook
	k.clientState = d.ClientState
	k.streamURL = d.StreamURL
	k.timeout = c.ringTimeout(time.Duration(cmp.Or(d.TimeoutSecs, 30)) * time.Second)
	resource := k.telnyxResource() // before the call starts: a dial answers is_alive false
	if err := c.start(k); err != nil {
		return errorBody(Telnyx, apiError{status: http.StatusServiceUnavailable})
	}
	c.log.Info("telnyx call created", "call_control_id", k.sid, "to", to)
	return http.StatusOK, map[string]any{"data": resource}
}

// handleTelnyxAction carries out a call command: POST /v2/calls/{id}/actions/{action}.
func (c *Carrier) handleTelnyxAction(w http.ResponseWriter, r *http.Request) {
	if !c.telnyxAuth(w, r) {
		return
	}
	k, ok := c.telnyxCall(w, r)
	if !ok {
		return
	}
	var cmd telnyxCommand
	if !decodeTelnyx(w, r, &cmd) {
		return
	}
	name := r.PathValue("action")
	op := map[string]string{"answer": actAnswer, "hangup": actHangup, "reject": actReject, "streaming_start": actReplace}[name]
	if op == "" {
		writeAPIError(w, Telnyx, http.StatusNotFound, 0, "The simulator does not know the command "+name)
		return
	}
	key := k.sid + ":" + name + ":" + cmd.CommandID
	c.once(w, r, key, cmd.CommandID != "", func() (int, any) {
		if cmd.ClientState != "" {
			if !isBase64(cmd.ClientState) {
				return errorBody(Telnyx, apiError{status: http.StatusUnprocessableEntity,
					message: "client_state must be a valid Base-64 encoded string", pointer: "/client_state"})
			}
			k.mu.Lock()
			k.clientState = cmd.ClientState
			k.mu.Unlock()
		}
		a := &action{op: op, cmd: cmd}
		if op == actReplace {
			if !isStreamURL(cmd.StreamURL) {
				return errorBody(Telnyx, apiError{status: http.StatusUnprocessableEntity,
					message: "stream_url must be a ws:// or wss:// URL", pointer: "/stream_url"})
			}
			a.conv = func(ctx context.Context) { k.telnyxStreamTo(ctx, cmd.StreamURL) }
		}
		err := k.act(r.Context(), a)
		switch {
		case errors.Is(err, errEnded):
			return errorBody(Telnyx, apiError{status: http.StatusUnprocessableEntity, code: 90018, message: "Call has already ended"})
		case errors.Is(err, errNotApplicable):
			return errorBody(Telnyx, apiError{status: http.StatusUnprocessableEntity, code: 90034,
				message: "The command " + name + " is not possible in the call's current state"})
		case err != nil:
			return errorBody(Telnyx, apiError{status: http.StatusServiceUnavailable})
		}
		return http.StatusOK, map[string]any{"data": map[string]string{"result": "ok"}}
	})
}

// handleTelnyxGet answers GET /v2/calls/{id}.
func (c *Carrier) handleTelnyxGet(w http.ResponseWriter, r *http.Request) {
	if !c.telnyxAuth(w, r) {
		return
	}
	// Telnyx answers 422 for a call it does not know, and keeps an ended call's status for
	// 10 minutes (developers.telnyx.com/api-reference/call-information/retrieve-a-call-status).
	k, err := c.call(r.PathValue("id"))
	if err != nil || k.kind != Telnyx || k.forgotten(time.Now()) {
		writeAPIError(w, Telnyx, http.StatusUnprocessableEntity, 90015, "Call not found")
		return
	}
	k.countLookup()
	writeJSON(w, http.StatusOK, map[string]any{"data": k.telnyxResource()})
}

// telnyxStatusKept is how long Telnyx answers for a call after it ended.
const telnyxStatusKept = 10 * time.Minute

func (k *call) forgotten(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.endedAt.IsZero() && now.Sub(k.endedAt) > telnyxStatusKept
}

func (c *Carrier) telnyxCall(w http.ResponseWriter, r *http.Request) (*call, bool) {
	k, err := c.call(r.PathValue("id"))
	if err != nil || k.kind != Telnyx {
		writeAPIError(w, Telnyx, http.StatusNotFound, 0, "Call not found")
		return nil, false
	}
	return k, true
}

func (c *Carrier) telnyxAuth(w http.ResponseWriter, r *http.Request) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !equal(key, c.cfg.TelnyxAPIKey) {
		writeAPIError(w, Telnyx, http.StatusUnauthorized, 0, "The API key is missing or invalid")
		return false
	}
	return true
}

func decodeTelnyx(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) { // commands may have no body at all
		writeAPIError(w, Telnyx, http.StatusBadRequest, 0, "The request body is not valid JSON")
		return false
	}
	return true
}

// once carries out a Telnyx command at most once per command_id within commandTTL: a
// repeat, even one that arrives while the first is under way, gets the first one's answer.
func (c *Carrier) once(w http.ResponseWriter, r *http.Request, key string, dedupe bool, do func() (int, any)) {
	if !dedupe {
		status, body := do()
		writeJSON(w, status, body)
		return
	}
	now := time.Now()
	c.mu.Lock()
	for k, cmd := range c.commands {
		if now.Sub(cmd.at) > commandTTL {
			delete(c.commands, k)
		}
	}
	cmd, seen := c.commands[key]
	if !seen {
		cmd = &command{at: now, done: make(chan struct{})}
		c.commands[key] = cmd
	}
	c.mu.Unlock()
	if !seen {
		cmd.status, cmd.body = do()
		close(cmd.done)
	}
	select {
	case <-cmd.done:
		writeJSON(w, cmd.status, cmd.body)
	case <-r.Context().Done():
	}
}

// telnyxResource is the call as Telnyx's API describes it; a dial answers is_alive false
// because dialling is asynchronous.
func (k *call) telnyxResource() map[string]any {
	k.mu.Lock()
	defer k.mu.Unlock()
	alive := k.status != statusQueued && k.endedAt.IsZero()
	return map[string]any{
		"record_type":     "call",
		"call_control_id": k.sid,
		"call_leg_id":     k.legID,
		"call_session_id": k.sessionID,
		"client_state":    nullable(k.clientState),
		"is_alive":        alive,
		"call_duration":   k.callDuration(),
		"start_time":      telnyxTimeOf(k.created),
		"end_time":        telnyxTimeOf(k.endedAt),
	}
}

// telnyxEnvelope is a Telnyx webhook.
type telnyxEnvelope struct {
	Data struct {
		RecordType string        `json:"record_type"`
		EventType  string        `json:"event_type"`
		ID         string        `json:"id"`
		OccurredAt string        `json:"occurred_at"`
		Payload    telnyxPayload `json:"payload"`
	} `json:"data"`
	Meta struct {
		Attempt     int    `json:"attempt"`
		DeliveredTo string `json:"delivered_to"`
	} `json:"meta"`
}

type telnyxPayload struct {
	CallControlID  string  `json:"call_control_id"`
	CallLegID      string  `json:"call_leg_id"`
	CallSessionID  string  `json:"call_session_id"`
	ClientState    *string `json:"client_state"`
	ConnectionID   string  `json:"connection_id"`
	From           string  `json:"from,omitempty"` // not on streaming.* (telnyx-go CallStreamingStartedPayload)
	To             string  `json:"to,omitempty"`
	Direction      string  `json:"direction,omitempty"` // call.initiated only, as Telnyx sends it
	State          string  `json:"state,omitempty"`
	StartTime      string  `json:"start_time,omitempty"`
	EndTime        string  `json:"end_time,omitempty"`
	HangupCause    string  `json:"hangup_cause,omitempty"`
	HangupSource   string  `json:"hangup_source,omitempty"`
	SIPHangupCause string  `json:"sip_hangup_cause,omitempty"`
	StreamURL      string  `json:"stream_url,omitempty"`
	// streaming.failed names its stream by id and by the parameters it was asked with.
	FailureReason string              `json:"failure_reason,omitempty"`
	StreamID      string              `json:"stream_id,omitempty"`
	StreamParams  *telnyxStreamParams `json:"stream_params,omitempty"`
	StreamType    string              `json:"stream_type,omitempty"`
	Digit         string              `json:"digit,omitempty"`
}

// telnyxStreamParams are a stream's parameters as given to Call Control.
type telnyxStreamParams struct {
	StreamURL string `json:"stream_url"`
	Track     string `json:"track"`
}

const telnyxTime = "2006-01-02T15:04:05.000000Z"

// telnyxTimeOf is a time as Telnyx writes it, or null when it is zero.
func telnyxTimeOf(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(telnyxTime)
	return &s
}

// telnyxWebhook fires a webhook about the call; extra fills in what only that event carries.
// Each attempt is signed anew, since meta.attempt changes the body.
func (k *call) telnyxWebhook(eventType string, extra func(*telnyxPayload)) {
	if k.webhookURL == "" {
		return
	}
	now := time.Now()
	var env telnyxEnvelope
	env.Data.RecordType, env.Data.EventType, env.Data.ID = "event", eventType, newUUID()
	env.Data.OccurredAt = now.UTC().Format(telnyxTime)
	env.Meta.DeliveredTo = k.webhookURL
	p := &env.Data.Payload
	direction := "outgoing"
	if k.inbound {
		direction = "incoming"
	}
	k.mu.Lock()
	*p = telnyxPayload{
		CallControlID: k.sid, CallLegID: k.legID, CallSessionID: k.sessionID,
		ClientState: nullable(k.clientState), ConnectionID: k.c.cfg.ConnectionID,
		From: k.from, To: k.to,
	}
	switch eventType {
	case "call.initiated":
		p.Direction = direction
		p.State = "bridging"
		if k.inbound {
			p.State = "parked"
		}
		p.StartTime = k.created.UTC().Format(telnyxTime)
	case "call.answered":
		p.State = "answered"
		p.StartTime = k.created.UTC().Format(telnyxTime)
	case "streaming.started", "streaming.stopped", "streaming.failed":
		p.From, p.To = "", ""
	case "call.hangup":
		p.State = "hangup"
		p.StartTime = k.created.UTC().Format(telnyxTime)
		p.EndTime = k.endedAt.UTC().Format(telnyxTime)
		p.HangupCause, p.HangupSource = k.cause, k.source
		p.SIPHangupCause = strconv.Itoa(k.sipCode)
		if k.cause == "normal_clearing" {
			p.SIPHangupCause = "unspecified"
		}
	}
	k.mu.Unlock()
	if extra != nil {
		extra(p)
	}
	k.queue(&callback{
		kind: Telnyx, callSID: k.sid, eventID: env.Data.ID, event: eventType, seq: -1,
		method: http.MethodPost, url: k.webhookURL,
		render: func(attempt int) ([]byte, http.Header) {
			e := env
			e.Meta.Attempt = attempt
			body, _ := json.Marshal(e)
			return body, delivery.TelnyxHeaders(k.c.priv, time.Now(), body)
		},
	}, now)
}

// telnyxInbound is an inbound Telnyx call: announced with call.initiated, it waits for
// Switchboard to answer, reject or hang up, until the caller gives up.
func (k *call) telnyxInbound(ctx context.Context) {
	k.setStatus(statusRinging)
	k.emit(evInitiated)
	giveUp := time.NewTimer(k.timeout)
	defer giveUp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-giveUp.C:
			k.end(statusNoAnswer, 487, "originator_cancel", "caller")
			return
		case a := <-k.ctrl:
			switch a.op {
			case actReplace: // streaming_start before the answer
				ack(a, errNotApplicable)
				continue
			case actAnswer:
				if a.cmd.StreamURL != "" {
					k.mu.Lock()
					k.streamURL = a.cmd.StreamURL
					k.mu.Unlock()
				}
				k.answer()
				ack(a, nil)
				k.live(ctx, k.telnyxMedia)
				return
			case actReject:
				if strings.EqualFold(a.cmd.Cause, "USER_BUSY") {
					k.end(statusBusy, 486, "user_busy", "callee")
				} else {
					k.end(statusNoAnswer, 603, "call_rejected", "callee")
				}
			case actHangup:
				k.end(statusCanceled, 487, "normal_clearing", "callee")
			case actFarHangup:
				k.end(statusCanceled, 487, "originator_cancel", "caller")
			}
			ack(a, nil)
			return
		}
	}
}

// telnyxMedia is an answered Telnyx call: it streams if asked to, and stays up when the
// stream ends (closed or broken), without media, until a hangup or a streaming_start.
func (k *call) telnyxMedia(ctx context.Context) {
	k.mu.Lock()
	streamURL := k.streamURL
	k.mu.Unlock()
	k.telnyxStreamTo(ctx, streamURL)
}

// telnyxStreamTo streams the call to streamURL ("" for none), then stays up without media until ctx
// ends: the call is over, or streaming_start replaces the stream.
func (k *call) telnyxStreamTo(ctx context.Context, streamURL string) {
	if streamURL != "" {
		k.mu.Lock()
		k.streamURL = streamURL
		k.mu.Unlock()
		k.stream(ctx, streamSpec{kind: Telnyx, url: streamURL})
	}
	<-ctx.Done()
}

// isStreamURL reports whether s is an absolute ws:// or wss:// URL.
func isStreamURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "ws" || u.Scheme == "wss") && u.Host != ""
}

func isBase64(s string) bool {
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
