package carrier

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const telnyxBearer = "Bearer " + testAPIKey

func newTestTelnyx(t *testing.T, apiURL string) *TelnyxClient {
	t.Helper()
	return NewTelnyxClient(testConfig(t, telnyxConfig(), apiURL), NewHTTPClient())
}

func telnyxRequest() PlaceRequest {
	return PlaceRequest{
		CallID: "c-42", Attempt: 2, To: "+15551234567",
		StatusURL:   "https://sb.example/webhooks/backup-1/events",
		RingTimeout: 30 * time.Second,
		StreamURL:   "wss://sb.example/webhooks/backup-1/media",
	}
}

const telnyxDialed = `{"data":{"call_control_id":"v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
	"call_leg_id":"2dc6fc34-f9e0-11ea-b68e-02420a0f7768","call_session_id":"2dc1b3c8-f9e0-11ea-bc5a-02420a0f7768",
	"is_alive":false,"record_type":"call"}}`

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func assertJSON(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		keys := slices.Sorted(maps.Keys(got))
		t.Errorf("body\n got %v (keys %v)\nwant %v", got, keys, want)
	}
}

func TestTelnyxPlaceDials(t *testing.T) {
	f := newFakeCarrier(t, reply(http.StatusOK, telnyxDialed))
	c := newTestTelnyx(t, f.URL+"/")

	placed, r := c.Place(context.Background(), telnyxRequest())
	if r.Outcome != Accepted || r.HTTPStatus != 200 {
		t.Fatalf("result %v", r)
	}
	if placed.CarrierCallID != "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg" || placed.Status != "" {
		t.Errorf("placed %+v", placed)
	}
	got := f.request(t)
	if got.method != http.MethodPost || got.path != "/v2/calls" || got.contentType != "application/json" || got.authorization != telnyxBearer {
		t.Errorf("%s %s content-type %q authorization %q", got.method, got.path, got.contentType, got.authorization)
	}
	assertJSON(t, decodeJSON(t, got.body), map[string]any{
		"connection_id":              "1494404757140276705",
		"to":                         "+15551234567",
		"from":                       "+15550002222",
		"webhook_url":                "https://sb.example/webhooks/backup-1/events",
		"webhook_url_method":         "POST",
		"client_state":               base64.StdEncoding.EncodeToString([]byte("c-42")),
		"timeout_secs":               30.0,
		"command_id":                 "c-42-2",
		"stream_url":                 "wss://sb.example/webhooks/backup-1/media",
		"stream_track":               "inbound_track",
		"stream_bidirectional_mode":  "rtp",
		"stream_codec":               "PCMU",
		"stream_bidirectional_codec": "PCMU",
	})
}

func TestTelnyxPlaceOptions(t *testing.T) {
	f := newFakeCarrier(t, reply(http.StatusOK, telnyxDialed))
	c := newTestTelnyx(t, f.URL)
	req := telnyxRequest()
	req.From, req.ClientState, req.StreamURL, req.RingTimeout = "+15559998888", "custom", "", 0
	if _, r := c.Place(context.Background(), req); r.Outcome != Accepted {
		t.Fatal(r)
	}
	body := decodeJSON(t, f.request(t).body)
	if body["from"] != "+15559998888" || body["client_state"] != base64.StdEncoding.EncodeToString([]byte("custom")) {
		t.Errorf("body %v", body)
	}
	for _, k := range []string{"timeout_secs", "stream_url", "stream_track", "stream_codec", "stream_bidirectional_mode"} {
		if _, ok := body[k]; ok {
			t.Errorf("%s sent without being asked for: %v", k, body)
		}
	}

	// The same attempt resent carries the same command_id; the next attempt a new one.
	req = telnyxRequest()
	c.Place(context.Background(), req)
	c.Place(context.Background(), req)
	req.Attempt++
	c.Place(context.Background(), req)
	var ids []any
	for range 3 {
		ids = append(ids, decodeJSON(t, f.request(t).body)["command_id"])
	}
	if fmt.Sprint(ids) != "[c-42-2 c-42-2 c-42-3]" {
		t.Errorf("command ids %v", ids)
	}
}

func telnyxErrorBody(code, title, detail, pointer string) string {
	e := map[string]any{"code": code, "title": title, "detail": detail}
	if pointer != "" {
		e["source"] = map[string]string{"pointer": pointer}
	}
	b, _ := json.Marshal(map[string]any{"errors": []any{e}})
	return string(b)
}

func TestTelnyxPlaceAnswers(t *testing.T) {
	tests := []placeAnswerCase{
		{"503", reply(503, ""), CarrierFault, "http 503", 503, 0, true},
		{"500 with HTML", reply(500, "<html><body>Internal Server Error</body></html>"), CarrierFault, "http 500", 500, 0, true},
		{"429", reply(429, telnyxErrorBody("10011", "Too many requests", "", "")), CarrierFault, "telnyx 10011 too many requests", 429, 10011, true},
		{"408", reply(408, ""), CarrierFault, "http 408", 408, 0, true},
		{"401", reply(401, telnyxErrorBody("10009", "Authentication failed", "The required authentication headers were either invalid or not included in the request.", "")), CarrierFault, "telnyx 10009 credentials rejected", 401, 10009, false},
		{"403", reply(403, telnyxErrorBody("10010", "Authorization failed", "", "")), CarrierFault, "telnyx 10010 not authorized", 403, 10010, false},
		{"404", reply(404, telnyxErrorBody("10005", "Resource not found", "", "")), CarrierFault, "telnyx 10005 not found", 404, 10005, false},
		{"422 invalid number", reply(422, telnyxErrorBody("10002", "Invalid phone number", "The phone number is invalid.", "/to")), Final, "telnyx 10002 invalid number", 422, 10002, false},
		{"422 inactive number", reply(422, telnyxErrorBody("10001", "Inactive phone number", "", "")), Final, "telnyx 10001 inactive number", 422, 10001, false},
		{"422 bad caller id is ours", reply(422, telnyxErrorBody("10016", "Phone number must be in +E.164 format", "", "/from")), CarrierFault, "telnyx 10016 invalid from", 422, 10016, false},
		{"422 bad connection is ours", reply(422, telnyxErrorBody("10015", "Bad Request", "", "/connection_id")), CarrierFault, "telnyx 10015 bad request", 422, 10015, false},
		{"422 no body", reply(422, ""), CarrierFault, "http 422", 422, 0, false},
		{"200 garbage JSON", reply(200, `{"data":{`), CarrierFault, "bad response", 200, 0, false},
		{"200 without call_control_id", reply(200, `{"data":{"is_alive":false}}`), CarrierFault, "bad response", 200, 0, false},
		{"302 redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, CarrierFault, "unexpected redirect", 302, 0, false},
		{"308 redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusPermanentRedirect)
		}, CarrierFault, "unexpected redirect", 308, 0, false},
	}
	runPlaceAnswers(t, tests, newTestTelnyx, telnyxRequest())
}

func TestTelnyxPlaceTransport(t *testing.T) {
	// command_id makes every carrier fault safe to resend; a cancelled call is over.
	runPlaceTransport(t, newTestTelnyx, telnyxRequest(), func(tc transportCase) bool { return tc.want == CarrierFault })
}

func TestTelnyxNeverShowsTheKey(t *testing.T) {
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			reply(status, telnyxErrorBody("10009", "Authentication failed", "got "+r.Header.Get("Authorization"), ""))(w, r)
		}
	}
	for _, status := range []int{401, 422, 500} {
		f := newFakeCarrier(t, echo(status))
		c := newTestTelnyx(t, f.URL)
		_, r := c.Place(context.Background(), telnyxRequest())
		assertClean(t, r)
		if !strings.Contains(r.Detail, redactedMark) {
			t.Errorf("detail %q should show where the secret was", r.Detail)
		}
		assertClean(t, c.Hangup(context.Background(), "v3:x"))
		assertClean(t, c.Answer(context.Background(), "v3:x", "", ""))
	}
	c := newTestTelnyx(t, "http://127.0.0.1:1")
	assertNeverPrinted(t, c, "key", testAPIKey)
}

func TestTelnyxPlaceRefusesBadRequests(t *testing.T) {
	tests := []refusalCase{
		{"to not E.164", func(r *PlaceRequest) { r.To = "+0" }, "invalid number"},
		{"from not E.164", func(r *PlaceRequest) { r.From = "15550001111" }, "invalid request"},
		{"no call id", func(r *PlaceRequest) { r.CallID = "" }, "invalid request"},
		{"no webhook url", func(r *PlaceRequest) { r.StatusURL = "" }, "invalid request"},
		{"http stream url", func(r *PlaceRequest) { r.StreamURL = "https://sb.example/media" }, "invalid request"},
	}
	runPlaceRefusals(t, tests, newTestTelnyx, reply(http.StatusOK, telnyxDialed), telnyxRequest, func(r Result, wantReason string) bool {
		return r.Outcome == Final && r.Reason == wantReason
	})
}

func TestTelnyxHangup(t *testing.T) {
	tests := []struct {
		name          string
		answer        http.HandlerFunc
		wantOutcome   Outcome
		wantReason    string
		wantRetryable bool
	}{
		{"200", reply(200, `{"data":{"result":"ok"}}`), Accepted, "accepted", false},
		{"already ended", reply(422, telnyxErrorBody("90018", "Call has already ended", "This call is no longer active and can't receive commands.", "")), Accepted, "already ended", false},
		{"503 may be resent", reply(503, ""), CarrierFault, "http 503", true},
		{"hang may be resent", hang, CarrierFault, "timeout", true},
		{"401", reply(401, ""), CarrierFault, "http 401", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t, tt.answer)
			r := newTestTelnyx(t, f.URL).Hangup(context.Background(), "v3:abc")
			if r.Outcome != tt.wantOutcome || r.Reason != tt.wantReason || r.Retryable != tt.wantRetryable {
				t.Errorf("got %v retryable=%v", r, r.Retryable)
			}
			got := f.request(t)
			if got.path != "/v2/calls/v3:abc/actions/hangup" || got.authorization != telnyxBearer {
				t.Errorf("sent %s auth %q", got.path, got.authorization)
			}
			assertJSON(t, decodeJSON(t, got.body), map[string]any{"command_id": "hangup-v3:abc"})
		})
	}
	if r := newTestTelnyx(t, "http://127.0.0.1:1").Hangup(context.Background(), ""); r.Outcome != Final {
		t.Errorf("empty id: %v", r)
	}
}

func TestTelnyxAnswer(t *testing.T) {
	f := newFakeCarrier(t, reply(200, `{"data":{"result":"ok"}}`))
	c := newTestTelnyx(t, f.URL)
	if r := c.Answer(context.Background(), "v3:in-1", "wss://sb.example/webhooks/backup-1/media", "c-7"); r.Outcome != Accepted {
		t.Fatal(r)
	}
	got := f.request(t)
	if got.path != "/v2/calls/v3:in-1/actions/answer" || got.authorization != telnyxBearer || got.contentType != "application/json" {
		t.Errorf("sent %s auth %q type %q", got.path, got.authorization, got.contentType)
	}
	assertJSON(t, decodeJSON(t, got.body), map[string]any{
		"command_id":                 "answer-v3:in-1",
		"client_state":               base64.StdEncoding.EncodeToString([]byte("c-7")),
		"stream_url":                 "wss://sb.example/webhooks/backup-1/media",
		"stream_track":               "inbound_track",
		"stream_bidirectional_mode":  "rtp",
		"stream_codec":               "PCMU",
		"stream_bidirectional_codec": "PCMU",
	})

	// Without a stream or state, only the command id goes.
	c.Answer(context.Background(), "v3:in-2", "", "")
	assertJSON(t, decodeJSON(t, f.request(t).body), map[string]any{"command_id": "answer-v3:in-2"})

	// The call hung up before we answered: nothing to blame the carrier for.
	g := newFakeCarrier(t, reply(422, telnyxErrorBody("90018", "Call has already ended", "", "")))
	if r := newTestTelnyx(t, g.URL).Answer(context.Background(), "v3:in-3", "", ""); r.Outcome != Final || r.Reason != "telnyx 90018 call already ended" {
		t.Errorf("answer after hangup: %v", r)
	}
	if r := c.Answer(context.Background(), "v3:in-4", "http://not-ws", ""); r.Outcome != Final || r.Reason != "invalid request" {
		t.Errorf("bad stream url: %v", r)
	}
	if r := c.Answer(context.Background(), "has space", "", ""); r.Outcome != Final {
		t.Errorf("bad id: %v", r)
	}
}

func TestTelnyxAnswerTransport(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestTelnyx(t, tc.apiURL(t))
			start := time.Now()
			r := c.Answer(tc.context(t), "v3:in-1", "wss://sb.example/m", "")
			checkElapsed(t, start)
			if r.Outcome != tc.want || r.Reason != tc.reason {
				t.Errorf("got %v; want %v %q", r, tc.want, tc.reason)
			}
		})
	}
}

func TestTelnyxStartStream(t *testing.T) {
	const stream = "wss://b.example/webhooks/backup-1/media?call=c-7&token=x"
	f := newFakeCarrier(t, reply(200, `{"data":{"result":"ok"}}`))
	c := newTestTelnyx(t, f.URL)
	if r := c.StartStream(context.Background(), "v3:in-1", stream); r.Outcome != Accepted {
		t.Fatal(r)
	}
	got := f.request(t)
	if got.path != "/v2/calls/v3:in-1/actions/streaming_start" || got.authorization != telnyxBearer || got.contentType != "application/json" {
		t.Errorf("sent %s auth %q type %q", got.path, got.authorization, got.contentType)
	}
	body := decodeJSON(t, got.body)
	first, _ := body["command_id"].(string)
	delete(body, "command_id")
	// The same stream fields as Answer's: bidirectional RTP, PCMU both ways.
	assertJSON(t, body, map[string]any{
		"stream_url":                 stream,
		"stream_track":               "inbound_track",
		"stream_bidirectional_mode":  "rtp",
		"stream_codec":               "PCMU",
		"stream_bidirectional_codec": "PCMU",
	})
	// The same re-point resent has the same command_id (Telnyx drops it); a re-point
	// elsewhere has another.
	c.StartStream(context.Background(), "v3:in-1", stream)
	again, _ := decodeJSON(t, f.request(t).body)["command_id"].(string)
	c.StartStream(context.Background(), "v3:in-1", "wss://c.example/m")
	other, _ := decodeJSON(t, f.request(t).body)["command_id"].(string)
	if first == "" || again != first || other == first {
		t.Errorf("command ids %q %q %q", first, again, other)
	}

	// Telnyx's answer for a call that has ended (422, 90018 "Call has already ended").
	g := newFakeCarrier(t, reply(422, telnyxErrorBody("90018", "Call has already ended", "", "")))
	if r := newTestTelnyx(t, g.URL).StartStream(context.Background(), "v3:in-3", stream); r.Outcome != Final || !r.Gone() {
		t.Errorf("stream on an ended call: %v gone=%v", r, r.Gone())
	}
	h := newFakeCarrier(t, reply(503, ""))
	if r := newTestTelnyx(t, h.URL).StartStream(context.Background(), "v3:in-3", stream); r.Outcome != CarrierFault || !r.Retryable || r.Gone() {
		t.Errorf("503: %v", r)
	}
	for _, bad := range [][2]string{{"v3:in-4", "http://not-ws"}, {"v3:in-4", ""}, {"has space", stream}} {
		if r := c.StartStream(context.Background(), bad[0], bad[1]); r.Outcome != Final || r.Reason != "invalid request" {
			t.Errorf("StartStream(%q, %q) = %v", bad[0], bad[1], r)
		}
	}
}

func TestTelnyxStartStreamTransport(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestTelnyx(t, tc.apiURL(t))
			start := time.Now()
			r := c.StartStream(tc.context(t), "v3:in-1", "wss://sb.example/m")
			checkElapsed(t, start)
			if r.Outcome != tc.want || r.Reason != tc.reason || r.Gone() {
				t.Errorf("got %v; want %v %q", r, tc.want, tc.reason)
			}
		})
	}
}
