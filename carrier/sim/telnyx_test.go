package sim_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
)

func TestTelnyxPublicKeyEndpoint(t *testing.T) {
	c, srv := newCarrier(t, sim.Config{})
	resp, err := srv.Client().Get(srv.URL + "/sim/telnyx/public-key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		PublicKey string `json:"public_key"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	key, err := base64.StdEncoding.DecodeString(body.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize || !ed25519.PublicKey(key).Equal(c.PublicKey()) ||
		body.PublicKey != c.PublicKeyBase64() {
		t.Errorf("public key %q: %v", body.PublicKey, err)
	}
}

func TestTelnyxOutboundCall(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c) // the switchboard verifies every webhook with the public key
	a := api{t, srv, c}

	dial := map[string]any{
		"connection_id": c.ConnectionID(), "from": "+15005550006", "to": "+15551230000",
		"webhook_url": sb.url("/events"), "client_state": "c2JfY2FsbA==", "command_id": "dial-1",
		"stream_url": sb.wsURL(), "stream_track": "both_tracks", "stream_bidirectional_mode": "rtp", "stream_codec": "PCMU",
	}
	status, body := a.telnyx("POST", "/v2/calls", dial)
	if status != http.StatusOK {
		t.Fatalf("dial: %d %v", status, body)
	}
	data := body["data"].(map[string]any)
	id := data["call_control_id"].(string)
	if data["is_alive"] != false || data["record_type"] != "call" || data["call_leg_id"] == "" || data["call_session_id"] == "" {
		t.Errorf("dial answer %v", data)
	}
	// The same command_id again is the same call.
	if status, again := a.telnyx("POST", "/v2/calls", dial); status != 200 || again["data"].(map[string]any)["call_control_id"] != id {
		t.Errorf("repeated command_id: %d %v", status, again)
	}
	if n := c.Stats().CallsCreated; n != 1 {
		t.Errorf("%d calls created, want 1", n)
	}

	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) >= 3200 })
	if got := sb.eventTypes(id); !slices.Equal(got, []string{"call.initiated", "call.answered", "streaming.started"}) {
		t.Errorf("webhooks %v", got)
	}
	init := sb.eventsOf(id)[0]
	for key, want := range map[string]string{
		"direction": "outgoing", "state": "bridging", "client_state": "c2JfY2FsbA==", "from": "+15005550006",
		"to": "+15551230000", "connection_id": c.ConnectionID(), "call_leg_id": data["call_leg_id"].(string),
	} {
		if got := init.payload(key); got != want {
			t.Errorf("call.initiated %s = %q, want %q", key, got, want)
		}
	}
	if init.Data.RecordType != "event" || init.Data.ID == "" || init.Meta.Attempt != 1 || init.Meta.DeliveredTo != sb.url("/events") {
		t.Errorf("envelope %+v", init)
	}

	peer := sb.peer(0)
	if peer.kind != sim.Telnyx || peer.handshake.Get("X-Twilio-Signature") != "" {
		t.Errorf("a Telnyx stream handshake carries %v", peer.handshake)
	}
	if got := peer.events()[:3]; !slices.Equal(got, []string{"connected", "start", "media"}) {
		t.Errorf("media stream opens with %v", got)
	}
	start := peer.message("start")
	s := start["start"].(map[string]any)
	if s["call_control_id"] != id || s["client_state"] != "c2JfY2FsbA==" || start["stream_id"] == nil || start["sequence_number"] != "1" {
		t.Errorf("start %v", start)
	}
	if f := s["media_format"].(map[string]any); f["encoding"] != "PCMU" || f["sample_rate"] != 8000.0 || f["channels"] != 1.0 {
		t.Errorf("media_format %v", f)
	}
	heard := peer.heard()
	mid := heard[len(heard)/2-800 : len(heard)/2+800]
	if p := media.Goertzel(mid, 1000); p < 0.05 {
		t.Errorf("switchboard heard 1000 Hz at %.3f", p)
	}
	redistest.Eventually(t, 10*time.Second, "the carrier to hear 440 Hz", func() bool {
		r := a.report(id)
		return r.BytesReceived >= 3200 && r.DominantHz == 440
	})
	if err := c.SendDigits(id, "5"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the digit", func() bool { return peer.message("dtmf") != nil })

	// Switchboard hangs up; the same command twice acts once.
	hangup := map[string]any{"command_id": "hangup-1", "client_state": "ZW5k"}
	for range 2 {
		if status, body := a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", hangup); status != 200 || body["data"].(map[string]any)["result"] != "ok" {
			t.Fatalf("hangup: %d %v", status, body)
		}
	}
	redistest.Eventually(t, 10*time.Second, "call.hangup", func() bool { return slices.Contains(sb.eventTypes(id), "call.hangup") })
	events := sb.eventsOf(id)
	last := events[len(events)-1]
	if last.Data.EventType != "call.hangup" || last.payload("hangup_cause") != "normal_clearing" ||
		last.payload("hangup_source") != "caller" || last.payload("client_state") != "ZW5k" || last.payload("state") != "hangup" {
		t.Errorf("call.hangup %+v", last.Data)
	}
	if got := sb.eventTypes(id); !slices.Equal(got, []string{
		"call.initiated", "call.answered", "streaming.started", "call.dtmf.received", "streaming.stopped", "call.hangup",
	}) {
		t.Errorf("webhooks %v", got)
	}
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return peer.message("stop") != nil })
	if _, body := a.telnyx("GET", "/v2/calls/"+id, nil); body["data"].(map[string]any)["is_alive"] != false {
		t.Errorf("GET after hangup %v", body)
	}
	if status, body := a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", map[string]any{}); status != 422 {
		t.Errorf("hangup of an ended call: %d %v", status, body)
	}
	if r := a.report(id); r.Status != "completed" || r.HangupSource != "caller" || r.FramesLost != 0 || r.FramesReceived < 10 {
		t.Errorf("report %+v", r)
	}
}

func TestTelnyxDestinationRule(t *testing.T) {
	tests := []struct {
		to, cause, sip string
	}{
		{"+15551230001", "user_busy", "486"},
		{"+15551230002", "timeout", "487"},
		{"+15551230004", "call_rejected", "603"},
	}
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{TelnyxWebhookURL: sb.url("/events")})
	sb.use(c)
	a := api{t, srv, c}
	for _, tt := range tests {
		status, body := a.telnyx("POST", "/v2/calls", map[string]any{
			"connection_id": c.ConnectionID(), "from": "+15005550006", "to": []string{tt.to},
		})
		if status != 200 {
			t.Fatalf("dial %s: %d %v", tt.to, status, body)
		}
		id := body["data"].(map[string]any)["call_control_id"].(string)
		redistest.Eventually(t, 10*time.Second, tt.to+" to end", func() bool { return len(sb.eventsOf(id)) == 2 })
		if got := sb.eventTypes(id); !slices.Equal(got, []string{"call.initiated", "call.hangup"}) {
			t.Errorf("%s: webhooks %v", tt.to, got)
		}
		h := sb.eventsOf(id)[1]
		if h.payload("hangup_cause") != tt.cause || h.payload("sip_hangup_cause") != tt.sip || h.payload("hangup_source") != "callee" {
			t.Errorf("%s: call.hangup %v", tt.to, h.Data.Payload)
		}
	}
	status, body := a.telnyx("POST", "/v2/calls", map[string]any{
		"connection_id": c.ConnectionID(), "from": "+15005550006", "to": "+15551230003",
	})
	errs, _ := body["errors"].([]any)
	if status != 422 || len(errs) != 1 || errs[0].(map[string]any)["source"].(map[string]any)["pointer"] != "/to" {
		t.Errorf("invalid number: %d %v", status, body)
	}
	if n := c.Stats().CallsCreated; n != 3 {
		t.Errorf("%d calls created", n)
	}
}

func TestTelnyxRequestErrors(t *testing.T) {
	c, srv := newCarrier(t, sim.Config{TelnyxWebhookURL: "http://127.0.0.1:1/events"})
	a := api{t, srv, c}
	req, _ := http.NewRequest("POST", srv.URL+"/v2/calls", nil)
	req.Header.Set("Authorization", "Bearer nope")
	if status, body := a.do(req); status != 401 || body["errors"] == nil {
		t.Errorf("bad key: %d %v", status, body)
	}
	for _, dial := range []map[string]any{
		{"connection_id": "nope", "from": "+1", "to": "+1"},
		{"connection_id": c.ConnectionID(), "to": "+1"},
		{"connection_id": c.ConnectionID(), "from": "+1", "to": "+1", "client_state": "not base64!"},
		{"connection_id": c.ConnectionID(), "from": "+1", "to": "+1", "timeout_secs": 1},
	} {
		if status, body := a.telnyx("POST", "/v2/calls", dial); status != 422 {
			t.Errorf("%v: %d %v", dial, status, body)
		}
	}
	if status, _ := a.telnyx("POST", "/v2/calls/nope/actions/answer", map[string]any{}); status != 404 {
		t.Errorf("unknown call: %d", status)
	}
}

func TestTelnyxInbound(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{TelnyxWebhookURL: sb.url("/events"), RingTimeout: time.Minute})
	sb.use(c)
	a := api{t, srv, c}

	id, err := c.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	if err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "call.initiated", func() bool { return len(sb.eventsOf(id)) == 1 })
	init := sb.eventsOf(id)[0]
	if init.Data.EventType != "call.initiated" || init.payload("direction") != "incoming" || init.payload("state") != "parked" {
		t.Errorf("call.initiated %+v", init.Data)
	}
	if status, body := a.telnyx("POST", "/v2/calls/"+id+"/actions/answer", map[string]any{
		"stream_url": sb.wsURL(), "stream_bidirectional_mode": "rtp", "client_state": "YWdlbnQ=",
	}); status != 200 {
		t.Fatalf("answer: %d %v", status, body)
	}
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) > 1600 })
	if s := sb.peer(0).message("start")["start"].(map[string]any); s["client_state"] != "YWdlbnQ=" {
		t.Errorf("start %v", s)
	}
	if status, _ := a.telnyx("POST", "/v2/calls/"+id+"/actions/answer", map[string]any{}); status != 422 {
		t.Errorf("second answer: %d", status)
	}
	if status, _ := a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", map[string]any{}); status != 200 {
		t.Errorf("hangup: %d", status)
	}
	redistest.Eventually(t, 10*time.Second, "call.hangup", func() bool { return slices.Contains(sb.eventTypes(id), "call.hangup") })
	if got := sb.eventTypes(id); !slices.Equal(got, []string{"call.initiated", "call.answered", "streaming.started", "streaming.stopped", "call.hangup"}) {
		t.Errorf("webhooks %v", got)
	}
	h := sb.eventsOf(id)[4]
	if h.payload("hangup_cause") != "normal_clearing" || h.payload("hangup_source") != "callee" || h.payload("direction") != "" {
		// Telnyx names the direction in call.initiated only.
		t.Errorf("call.hangup %v", h.Data.Payload)
	}

	// An inbound call rejected as busy is busy.
	rejected, _ := c.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	if status, _ := a.telnyx("POST", "/v2/calls/"+rejected+"/actions/reject", map[string]any{"cause": "USER_BUSY"}); status != 200 {
		t.Errorf("reject: %d", status)
	}
	if r := a.report(rejected); r.Status != "busy" || r.HangupCause != "user_busy" {
		t.Errorf("rejected: %+v", r)
	}
}

func TestTelnyxInboundCallerGivesUp(t *testing.T) {
	sb := newSwitchboard(t)
	c, _ := newCarrier(t, sim.Config{TelnyxWebhookURL: sb.url("/events")})
	sb.use(c)
	id, err := c.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	if err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the caller to give up", func() bool { return len(sb.eventsOf(id)) == 2 })
	if h := sb.eventsOf(id)[1]; h.payload("hangup_cause") != "originator_cancel" || h.payload("hangup_source") != "caller" {
		t.Errorf("call.hangup %v", h.Data.Payload)
	}
}

func TestTelnyxRetriesServerErrors(t *testing.T) {
	sb := newSwitchboard(t)
	sb.statusCode = http.StatusServiceUnavailable
	c, srv := newCarrier(t, sim.Config{TelnyxWebhookURL: sb.url("/events")})
	sb.use(c)
	a := api{t, srv, c}
	_, body := a.telnyx("POST", "/v2/calls", map[string]any{"connection_id": c.ConnectionID(), "from": "+1", "to": "+15551230001"})
	id := body["data"].(map[string]any)["call_control_id"].(string)
	redistest.Eventually(t, 10*time.Second, "three attempts of each webhook", func() bool { return len(sb.eventsOf(id)) == 6 })
	events := sb.eventsOf(id)
	for i, e := range events {
		if e.Meta.Attempt != i%3+1 || e.Data.ID != events[i/3*3].Data.ID {
			t.Errorf("webhook %d: attempt %d id %s", i, e.Meta.Attempt, e.Data.ID)
		}
	}
	redistest.Eventually(t, 10*time.Second, "the stats", func() bool { return c.Stats().CallbacksFailed == 6 })
	if s := c.Stats(); s.CallbacksSent != 6 || s.CallbacksRetried != 4 || s.CallbacksDelivered != 0 || s.CallbackHTTPStatus["503"] != 6 {
		t.Errorf("stats %+v", s)
	}
}
