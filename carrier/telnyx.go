package carrier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TelnyxClient places, answers and ends calls through Telnyx Call Control v2
// (https://developers.telnyx.com/api/call-control). It is safe for concurrent use.
//
// Every command carries a command_id, which Telnyx uses to drop repeats within 60 s, so a
// command that timed out or met a 5xx may be sent again as is: those results are Retryable.
type TelnyxClient struct {
	id           string
	calls        string // {api_url}/v2/calls
	key          string
	connectionID string
	from         string
	timeout      time.Duration
	hc           *http.Client
	scrub        scrubber
}

// NewTelnyxClient returns a client for cfg, which should have passed Normalize (NewClient
// does both). hc may be nil, which means NewHTTPClient(); either way redirects are not
// followed.
func NewTelnyxClient(cfg Config, hc *http.Client) *TelnyxClient {
	return &TelnyxClient{
		id:           cfg.ID,
		calls:        strings.TrimRight(cfg.APIURL, "/") + "/v2/calls",
		key:          cfg.APIKey,
		connectionID: cfg.ConnectionID,
		from:         cfg.From,
		timeout:      requestTimeout(cfg),
		hc:           clientFor(hc),
		scrub:        scrubber{cfg.APIKey},
	}
}

// telnyxCommand is the body of Dial and Answer; empty fields are left out so Telnyx applies
// its own defaults.
type telnyxCommand struct {
	ConnectionID     string `json:"connection_id,omitempty"`
	To               string `json:"to,omitempty"`
	From             string `json:"from,omitempty"`
	WebhookURL       string `json:"webhook_url,omitempty"`
	WebhookURLMethod string `json:"webhook_url_method,omitempty"`
	ClientState      string `json:"client_state,omitempty"`
	TimeoutSecs      int    `json:"timeout_secs,omitempty"`
	CommandID        string `json:"command_id,omitempty"`
	Cause            string `json:"cause,omitempty"` // reject: CALL_REJECTED or USER_BUSY
	mediaStream
}

// mediaStream asks Telnyx to stream the call both ways as RTP-framed G.711 mu-law, the
// format the media bridge speaks for every carrier; inbound_track is the far end's voice.
type mediaStream struct {
	StreamURL                string `json:"stream_url,omitempty"`
	StreamTrack              string `json:"stream_track,omitempty"`
	StreamBidirectionalMode  string `json:"stream_bidirectional_mode,omitempty"`
	StreamCodec              string `json:"stream_codec,omitempty"`
	StreamBidirectionalCodec string `json:"stream_bidirectional_codec,omitempty"`
}

func newMediaStream(streamURL string) mediaStream {
	if streamURL == "" {
		return mediaStream{}
	}
	return mediaStream{
		StreamURL:                streamURL,
		StreamTrack:              "inbound_track",
		StreamBidirectionalMode:  "rtp",
		StreamCodec:              "PCMU",
		StreamBidirectionalCodec: "PCMU",
	}
}

// Place dials: POST {api_url}/v2/calls. The command_id is CallID-Attempt, so resending the
// same attempt is dropped by Telnyx while the next attempt goes through.
func (c *TelnyxClient) Place(ctx context.Context, req PlaceRequest) (Placed, Result) {
	from, r, ok := req.check(c.from)
	if !ok {
		return Placed{}, r
	}
	if req.CallID == "" {
		return Placed{}, invalid("invalid request", "no call id")
	}
	if req.StreamURL != "" {
		if msg := absoluteURL(req.StreamURL, "ws", "wss"); msg != "" {
			return Placed{}, invalid("invalid request", "stream url %s", msg)
		}
	}
	state := req.ClientState
	if state == "" {
		state = req.CallID
	}
	cmd := telnyxCommand{
		ConnectionID:     c.connectionID,
		To:               req.To,
		From:             from,
		WebhookURL:       req.StatusURL,
		WebhookURLMethod: http.MethodPost,
		ClientState:      base64.StdEncoding.EncodeToString([]byte(state)),
		TimeoutSecs:      ringSeconds(req.RingTimeout),
		CommandID:        req.CallID + "-" + strconv.Itoa(req.Attempt),
		mediaStream:      newMediaStream(req.StreamURL),
	}
	status, body, err := c.post(ctx, c.calls, cmd)
	if err != nil {
		return Placed{}, telnyxRetry(c.scrub.transport(err))
	}
	r = ClassifyTelnyx(status, c.scrub.bytes(body))
	if r.Outcome != Accepted {
		return Placed{}, r
	}
	var dialed struct {
		Data struct {
			CallControlID string `json:"call_control_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &dialed); err != nil || !validToken(dialed.Data.CallControlID, 256, false) {
		// Telnyx says it took the call but we cannot tell which one. Not Retryable: the
		// repeat would be dropped as a duplicate and tell us nothing more.
		return Placed{}, Result{Outcome: CarrierFault, Reason: "bad response", HTTPStatus: status,
			MaybeCreated: true, Detail: "no usable call_control_id in the answer"}
	}
	return Placed{CarrierCallID: dialed.Data.CallControlID}, r
}

// Hangup ends the call: POST /v2/calls/{call_control_id}/actions/hangup. A call that has
// already ended (Telnyx 90018) is Accepted.
func (c *TelnyxClient) Hangup(ctx context.Context, callControlID string) Result {
	if !validToken(callControlID, 256, false) {
		return invalid("invalid request", "call control id %q", callControlID)
	}
	r := c.action(ctx, callControlID, "hangup", telnyxCommand{CommandID: "hangup-" + callControlID})
	if r.Code == telnyxCallEnded {
		r.Outcome, r.Reason = Accepted, "already ended"
	}
	return hangupResult(r)
}

// Reject declines an inbound call that has not been answered: POST
// /v2/calls/{call_control_id}/actions/reject with cause USER_BUSY, so the caller hears busy.
// A call that has already ended (Telnyx 90018) is Accepted.
func (c *TelnyxClient) Reject(ctx context.Context, callControlID string) Result {
	if !validToken(callControlID, 256, false) {
		return invalid("invalid request", "call control id %q", callControlID)
	}
	r := c.action(ctx, callControlID, "reject", telnyxCommand{CommandID: "reject-" + callControlID, Cause: "USER_BUSY"})
	if r.Code == telnyxCallEnded {
		r.Outcome, r.Reason = Accepted, "already ended"
	}
	return hangupResult(r)
}

// Answer answers an inbound call and starts its media stream to streamURL (ws:// or wss://,
// may be empty): POST /v2/calls/{call_control_id}/actions/answer. clientState, plain text,
// is echoed base64-encoded in the call's later webhooks; empty sends none. A call that
// ended before we answered is Final.
func (c *TelnyxClient) Answer(ctx context.Context, callControlID, streamURL, clientState string) Result {
	if !validToken(callControlID, 256, false) {
		return invalid("invalid request", "call control id %q", callControlID)
	}
	if streamURL != "" {
		if msg := absoluteURL(streamURL, "ws", "wss"); msg != "" {
			return invalid("invalid request", "stream url %s", msg)
		}
	}
	cmd := telnyxCommand{CommandID: "answer-" + callControlID, mediaStream: newMediaStream(streamURL)}
	if clientState != "" {
		cmd.ClientState = base64.StdEncoding.EncodeToString([]byte(clientState))
	}
	return c.action(ctx, callControlID, "answer", cmd)
}

// StartStream starts a new media stream on a live call to streamURL (ws:// or wss://), in
// the same format as Answer's: POST /v2/calls/{call_control_id}/actions/streaming_start. It
// is how a call's media moves to another instance; Telnyx keeps the call up without media
// until then. The command_id names the call and the URL, so a resend of the same re-point is
// dropped while a re-point to another instance goes through. A call that has ended (Telnyx
// 422, 90018) is Final with Gone() true.
func (c *TelnyxClient) StartStream(ctx context.Context, callControlID, streamURL string) Result {
	if !validToken(callControlID, 256, false) {
		return invalid("invalid request", "call control id %q", callControlID)
	}
	if msg := absoluteURL(streamURL, "ws", "wss"); msg != "" {
		return invalid("invalid request", "stream url %s", msg)
	}
	cmd := telnyxCommand{CommandID: "stream-" + callControlID + "-" + commandTag(streamURL), mediaStream: newMediaStream(streamURL)}
	return c.action(ctx, callControlID, "streaming_start", cmd)
}

// commandTag is a short digest of s for a command_id: the same s gives the same tag.
func commandTag(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func (c *TelnyxClient) action(ctx context.Context, callControlID, action string, cmd telnyxCommand) Result {
	status, body, err := c.post(ctx, c.calls+"/"+url.PathEscape(callControlID)+"/actions/"+action, cmd)
	if err != nil {
		return telnyxRetry(c.scrub.transport(err))
	}
	return ClassifyTelnyx(status, c.scrub.bytes(body))
}

// telnyxRetry marks a command that may or may not have reached Telnyx as safe to resend:
// the command_id makes Telnyx drop it if the first one did arrive.
func telnyxRetry(r Result) Result {
	if r.Outcome == CarrierFault {
		r.Retryable = true
	}
	return r
}

func (c *TelnyxClient) post(ctx context.Context, u string, cmd telnyxCommand) (int, []byte, error) {
	payload, err := json.Marshal(cmd)
	if err != nil {
		return 0, nil, err
	}
	return roundTrip(ctx, c.hc, c.timeout, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.key)
		return req, nil
	})
}

// String, GoString and Format have value receivers so that a dereferenced client prints
// safely too.
func (c TelnyxClient) String() string   { return fmt.Sprintf("telnyx client for carrier %q", c.id) }
func (c TelnyxClient) GoString() string { return fmt.Sprintf("&carrier.TelnyxClient{id:%q}", c.id) }

// Format keeps the API key out of every verb, %+v and %d included.
func (c TelnyxClient) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, c.GoString()) // a fmt.State write error has nowhere to go
		return
	}
	_, _ = io.WriteString(f, c.String()) // as above
}
