package sim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

// The carriers' documented payloads, kept with the webhooks that parse them; their README
// says where each comes from. The simulator is checked against them so that it cannot drift
// from what real carriers send.
const fixtures = "../../webhooks/testdata/carriers"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func fixtureForm(t *testing.T, name string) url.Values {
	t.Helper()
	v := url.Values{}
	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, name)))
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), "="); ok {
			v.Add(k, val)
		}
	}
	return v
}

// jsonType names a decoded JSON value's type.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// shapeRules say where the simulator may differ from a documented example, and why.
type shapeRules struct {
	// optional keys (dotted paths) of the example the simulator may leave out: documented
	// as sent only sometimes.
	optional map[string]bool
	// extra keys the simulator may send beyond the example: in the carrier's own SDK
	// model of the message, just not in the docs' example.
	extra map[string]bool
	// nullable keys that may be null where the example has a value (Telnyx's client_state
	// when no command set one).
	nullable map[string]bool
}

// compareShape reports every difference in keys and JSON types between a documented
// example and what the simulator sent.
func compareShape(path string, doc, got map[string]any, r shapeRules) []string {
	var diffs []string
	for k, dv := range doc {
		p := strings.TrimPrefix(path+"."+k, ".")
		gv, ok := got[k]
		switch {
		case !ok:
			if !r.optional[p] {
				diffs = append(diffs, "missing "+p)
			}
		case jsonType(gv) == "null" && r.nullable[p]:
		case jsonType(dv) != jsonType(gv):
			diffs = append(diffs, p+" is "+jsonType(gv)+", documented "+jsonType(dv))
		case jsonType(dv) == "object":
			diffs = append(diffs, compareShape(p, dv.(map[string]any), gv.(map[string]any), r)...)
		}
	}
	for k := range got {
		p := strings.TrimPrefix(path+"."+k, ".")
		if _, ok := doc[k]; !ok && !r.extra[p] {
			diffs = append(diffs, "undocumented "+p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// Value formats both the docs and the simulator must follow.
var (
	decimal  = regexp.MustCompile(`^[0-9]+$`)
	e164     = regexp.MustCompile(`^\+[0-9]{6,15}$`)
	sidOf    = func(prefix string) *regexp.Regexp { return regexp.MustCompile(`^` + prefix + `[0-9a-zA-Z]{32}$`) }
	uuidLike = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

func TestTwilioCallbacksMatchTheDocs(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}

	answered := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) >= 3200 })
	redistest.Eventually(t, 10*time.Second, "the mark to come back", func() bool { return sb.peer(0).message("mark") != nil })
	if status, _ := a.twilio("POST", "/Calls/"+answered+".json", url.Values{"Status": {"completed"}}); status != http.StatusOK {
		t.Fatalf("hangup: %d", status)
	}
	busy := a.dialTwilio(sb, "+15551230001")
	noAnswer := a.dialTwilio(sb, "+15551230002")
	redistest.Eventually(t, 10*time.Second, "every callback", func() bool {
		return len(sb.statusesOf(answered)) == 4 && len(sb.statusesOf(busy)) == 2 && len(sb.statusesOf(noAnswer)) == 3
	})
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return sb.peer(0).message("stop") != nil })

	var got []url.Values
	for _, sid := range []string{answered, busy, noAnswer} {
		got = append(got, sb.statusesOf(sid)...)
	}
	seen := map[string]bool{}
	for _, p := range got {
		status := p.Get("CallStatus")
		seen[status] = true
		doc := fixtureForm(t, "twilio/status-"+status+".params")
		if gk, dk := sortedKeys(p), sortedKeys(doc); !slices.Equal(gk, dk) {
			t.Errorf("%s callback has %v, documented %v", status, gk, dk)
		}
		checkTwilioValues(t, "simulator "+status, p)
	}
	for _, s := range []string{"initiated", "ringing", "in-progress", "completed", "busy", "no-answer"} {
		if !seen[s] {
			t.Errorf("no %s callback to compare", s)
		}
		checkTwilioValues(t, "fixture "+s, fixtureForm(t, "twilio/status-"+s+".params"))
	}

	// Media Streams: every message the simulator sent, against the documented one.
	peer := sb.peer(0)
	peer.mu.Lock()
	messages := slices.Clone(peer.messages)
	peer.mu.Unlock()
	compareMedia(t, "twilio", messages, map[string]shapeRules{
		// The docs' start example shows a unidirectional stream's parameters; ours carry sb_call.
		"start": {optional: map[string]bool{"start.customParameters.FirstName": true, "start.customParameters.LastName": true,
			"start.customParameters.RemoteParty": true}, extra: map[string]bool{"start.customParameters.sb_call": true}},
	})
}

func sortedKeys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkTwilioValues checks the value formats of a status callback.
func checkTwilioValues(t *testing.T, what string, p url.Values) {
	t.Helper()
	for key, ok := range map[string]bool{
		"AccountSid":      sidOf("AC").MatchString(p.Get("AccountSid")),
		"CallSid":         sidOf("CA").MatchString(p.Get("CallSid")),
		"ApiVersion":      p.Get("ApiVersion") == "2010-04-01",
		"CallbackSource":  p.Get("CallbackSource") == "call-progress-events",
		"Direction":       p.Get("Direction") == "outbound-api",
		"SequenceNumber":  decimal.MatchString(p.Get("SequenceNumber")),
		"From":            e164.MatchString(p.Get("From")) && p.Get("Caller") == p.Get("From"),
		"To":              e164.MatchString(p.Get("To")) && p.Get("Called") == p.Get("To"),
		"CallDuration":    !p.Has("CallDuration") || decimal.MatchString(p.Get("CallDuration")),
		"Duration":        !p.Has("Duration") || decimal.MatchString(p.Get("Duration")),
		"SipResponseCode": !p.Has("SipResponseCode") || decimal.MatchString(p.Get("SipResponseCode")),
	} {
		if !ok {
			t.Errorf("%s: %s = %q is not in the documented format", what, key, p.Get(key))
		}
	}
	if _, err := time.Parse(time.RFC1123Z, p.Get("Timestamp")); err != nil {
		t.Errorf("%s: Timestamp %q is not RFC 2822: %v", what, p.Get("Timestamp"), err)
	}
}

// compareMedia checks each kind of media message the simulator sent against the documented
// one of its carrier, and that every documented kind it should send was sent.
func compareMedia(t *testing.T, carrier string, messages []map[string]any, rules map[string]shapeRules) {
	t.Helper()
	sent := map[string]bool{}
	for _, m := range messages {
		event, _ := m["event"].(string)
		if event == "dtmf" || sent[event] {
			continue // one of each kind is enough; DTMF has no fixture
		}
		sent[event] = true
		doc := fixtureJSON(t, carrier+"/media-"+event+".json")
		for _, d := range compareShape("", doc, m, rules[event]) {
			t.Errorf("%s media %s: %s", carrier, event, d)
		}
		// Numbers travel as strings, as the docs show.
		for _, k := range []string{"sequenceNumber", "sequence_number"} {
			if v, ok := m[k]; ok && !decimal.MatchString(v.(string)) {
				t.Errorf("%s media %s: %s %v", carrier, event, k, v)
			}
		}
	}
	for _, event := range []string{"connected", "start", "media", "mark", "stop"} {
		if !sent[event] {
			t.Errorf("%s: the simulator sent no %s message to compare", carrier, event)
		}
	}
}

func TestTelnyxWebhooksMatchTheDocs(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}

	dial := map[string]any{
		"connection_id": c.ConnectionID(), "from": "+15005550006", "to": "+15551230000",
		"webhook_url": sb.url("/events"), "client_state": "c2JfY2FsbA==", "command_id": "conformance-1",
		"stream_url": sb.wsURL(), "stream_track": "both_tracks", "stream_bidirectional_mode": "rtp",
	}
	status, body := a.telnyx("POST", "/v2/calls", dial)
	if status != http.StatusOK {
		t.Fatalf("dial: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["call_control_id"].(string)
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) >= 3200 })
	redistest.Eventually(t, 10*time.Second, "the mark to come back", func() bool { return sb.peer(0).message("mark") != nil })
	if status, _ := a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", map[string]any{}); status != http.StatusOK {
		t.Fatalf("hangup: %d", status)
	}
	redistest.Eventually(t, 10*time.Second, "call.hangup", func() bool { return slices.Contains(sb.eventTypes(id), "call.hangup") })
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return sb.peer(0).message("stop") != nil })

	// A second call whose stream cannot connect: streaming.failed.
	dial["stream_url"], dial["command_id"] = refusingWebSocketURL(t), "conformance-2"
	status, body = a.telnyx("POST", "/v2/calls", dial)
	if status != http.StatusOK {
		t.Fatalf("dial: %d %v", status, body)
	}
	failing := body["data"].(map[string]any)["call_control_id"].(string)
	redistest.Eventually(t, 10*time.Second, "streaming.failed", func() bool { return slices.Contains(sb.eventTypes(failing), "streaming.failed") })
	if status, _ := a.telnyx("POST", "/v2/calls/"+failing+"/actions/hangup", map[string]any{}); status != http.StatusOK {
		t.Fatalf("hangup: %d", status)
	}

	// Keys the official SDK's models carry that the docs' examples leave out (team-telnyx/
	// telnyx-go webhook.go), and keys the examples show that are sent only sometimes.
	sdk := func(keys ...string) map[string]bool {
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		return m
	}
	nullable := sdk("data.payload.client_state")
	rules := map[string]shapeRules{
		"call.initiated": {extra: sdk("data.payload.start_time"), nullable: nullable},
		"call.answered": {extra: sdk("meta", "data.payload.start_time"), nullable: nullable,
			optional: sdk("data.payload.stream_url")}, // only when the answer started a stream
		"call.hangup": {extra: sdk("meta", "data.payload.end_time"), nullable: nullable,
			optional: sdk("data.payload.call_quality_stats")}, // "Returns nil if no metrics are available"
		"streaming.started": {extra: sdk("meta", "data.payload.call_leg_id", "data.payload.call_session_id",
			"data.payload.client_state", "data.payload.connection_id"), nullable: nullable},
		"streaming.stopped": {extra: sdk("meta", "data.payload.call_leg_id", "data.payload.call_session_id",
			"data.payload.client_state", "data.payload.connection_id"), nullable: nullable},
		"streaming.failed": {extra: sdk("meta"), nullable: nullable},
	}
	files := map[string]string{
		"call.initiated": "call-initiated-outbound.json", "call.answered": "call-answered.json",
		"call.hangup": "call-hangup.json", "streaming.started": "streaming-started.json", "streaming.stopped": "streaming-stopped.json",
		"streaming.failed": "streaming-failed.json",
	}
	seen := map[string]bool{}
	for _, e := range append(sb.eventsOf(id), sb.eventsOf(failing)...) {
		kind := e.Data.EventType
		seen[kind] = true
		var got map[string]any
		if err := json.Unmarshal(e.raw, &got); err != nil {
			t.Fatal(err)
		}
		doc := fixtureJSON(t, "telnyx/"+files[kind])
		for _, d := range compareShape("", doc, got, rules[kind]) {
			t.Errorf("%s: %s", kind, d)
		}
		for _, m := range []map[string]any{doc, got} {
			data := m["data"].(map[string]any)
			p := data["payload"].(map[string]any)
			if _, err := time.Parse(time.RFC3339Nano, data["occurred_at"].(string)); err != nil ||
				!uuidLike.MatchString(data["id"].(string)) || data["record_type"] != "event" {
				t.Errorf("%s: envelope %v not in the documented format", kind, data)
			}
			wantState := map[string]string{"call.answered": "answered", "call.hangup": "hangup", "call.initiated": "bridging"}[kind]
			if s, _ := p["state"].(string); s != wantState {
				t.Errorf("%s: state %q, documented %q", kind, s, wantState)
			}
			if _, has := p["direction"]; has != (kind == "call.initiated") {
				t.Errorf("%s: direction present %v; Telnyx sends it on call.initiated only", kind, has)
			}
		}
	}
	for kind := range files {
		if !seen[kind] {
			t.Errorf("the simulator sent no %s to compare", kind)
		}
	}

	peer := sb.peer(0)
	peer.mu.Lock()
	messages := slices.Clone(peer.messages)
	peer.mu.Unlock()
	compareMedia(t, "telnyx", messages, map[string]shapeRules{
		"start": {nullable: sdk("start.client_state"), optional: sdk("start.tags")}, // tags: "Array of tags associated to number"
	})
}

// TestTelnyxStreamingStartAsDocumented: Telnyx's own streaming_start example starts a stream
// on a live call, and is refused with 422 and 90018 once the call has ended.
func TestTelnyxStreamingStartAsDocumented(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{TelnyxWebhookURL: sb.url("/events")})
	sb.use(c)
	a := api{t, srv, c}
	_, body := a.telnyx("POST", "/v2/calls", map[string]any{"connection_id": c.ConnectionID(), "from": "+1", "to": "+15551230000"})
	id := body["data"].(map[string]any)["call_control_id"].(string)
	a.waitStatus(id, "in-progress")

	example := fixtureJSON(t, "telnyx/streaming-start-request.json")
	example["stream_url"] = sb.wsURL() // the docs' wss://www.example.com cannot be reached
	if status, body := a.telnyx("POST", "/v2/calls/"+id+"/actions/streaming_start", example); status != http.StatusOK {
		t.Fatalf("documented streaming_start: %d %v", status, body)
	}
	redistest.Eventually(t, 10*time.Second, "the stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) > 0 })
	if s := sb.peer(0).message("start")["start"].(map[string]any); s["client_state"] != example["client_state"] {
		t.Errorf("start carries client_state %v, want the command's", s["client_state"])
	}

	a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", map[string]any{})
	a.waitStatus(id, "completed")
	example["command_id"] = "another"
	status, body := a.telnyx("POST", "/v2/calls/"+id+"/actions/streaming_start", example)
	errs, _ := body["errors"].([]any)
	if status != http.StatusUnprocessableEntity || len(errs) != 1 || errs[0].(map[string]any)["code"] != "90018" {
		t.Errorf("streaming_start on an ended call: %d %v", status, body)
	}
}

// refusingWebSocketURL is a ws:// URL on a local port nothing listens on.
func refusingWebSocketURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "ws://" + addr + "/media"
}
