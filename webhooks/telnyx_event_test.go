package webhooks

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

// telnyxEvent builds a webhook like telnyxEnvelope with another event type and extra
// payload fields (raw JSON members, e.g. `"hangup_cause":"user_busy"`).
func telnyxEvent(eventType string, payload ...string) []byte {
	extra := ""
	for _, p := range payload {
		extra += "," + p
	}
	return []byte(`{"data":{"record_type":"event","event_type":"` + eventType + `","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
	"occurred_at":"2018-02-02T22:25:27.521992Z",
	"payload":{"call_control_id":"v3:2EC-70CTEjlUq3tDM0CxKXIt5-5N4iP4wo7_-PfH-qub97Sk4EqO5w","connection_id":"7267xxxxxxxxxxxxxx",
	"call_leg_id":"d14dbcee-880b-11eb-8204-02420a0f7568","call_session_id":"428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
	"from":"+12025550133","to":"+12025550131","direction":"outgoing","state":"parked"` + extra + `}},
	"meta":{"attempt":2,"delivered_to":"https://example.com/webhooks"}}`)
}

func TestParseTelnyxEventReference(t *testing.T) {
	got, err := ParseTelnyxEvent("telnyx-1", []byte(telnyxEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	want := call.Event{
		ID:            "tx:0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
		Carrier:       "telnyx-1",
		CarrierCallID: "d14dbcee-880b-11eb-8204-02420a0f7568",
		State:         call.Initiated,
		Direction:     call.Inbound,
		From:          "+12025550133",
		To:            "+12025550131",
		At:            time.Date(2018, 2, 2, 22, 25, 27, 521992000, time.UTC),
	}
	// client_state is "have a nice day =]", not one of our ids.
	if got != want {
		t.Fatalf("ParseTelnyxEvent =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseTelnyxEvent(t *testing.T) {
	ourState := `"client_state":"` + base64.StdEncoding.EncodeToString([]byte(testCallID)) + `"`
	tests := []struct {
		name   string
		body   []byte
		state  call.State // as reported for a call not yet answered
		detail string
	}{
		{"initiated", telnyxEvent("call.initiated"), call.Initiated, ""},
		{"answered", telnyxEvent("call.answered"), call.InProgress, ""},
		{"hangup normal_clearing", telnyxEvent("call.hangup", `"hangup_cause":"normal_clearing"`, `"hangup_source":"callee"`, `"sip_hangup_cause":"200"`), call.NoAnswer, "normal_clearing by callee, sip 200"},
		{"hangup normal_clearing by caller", telnyxEvent("call.hangup", `"hangup_cause":"normal_clearing"`, `"hangup_source":"caller"`), call.Canceled, "normal_clearing by caller"},
		{"hangup time_limit", telnyxEvent("call.hangup", `"hangup_cause":"time_limit"`), call.NoAnswer, "time_limit"},
		{"hangup user_busy", telnyxEvent("call.hangup", `"hangup_cause":"user_busy"`, `"hangup_source":"callee"`, `"sip_hangup_cause":"486"`), call.Busy, "user_busy by callee, sip 486"},
		{"hangup call_rejected", telnyxEvent("call.hangup", `"hangup_cause":"call_rejected"`, `"sip_hangup_cause":"603"`), call.NoAnswer, "call_rejected, sip 603"},
		{"hangup no_answer", telnyxEvent("call.hangup", `"hangup_cause":"no_answer"`), call.NoAnswer, "no_answer"},
		{"hangup timeout", telnyxEvent("call.hangup", `"hangup_cause":"timeout"`, `"sip_hangup_cause":"unspecified"`), call.NoAnswer, "timeout"},
		{"hangup originator_cancel", telnyxEvent("call.hangup", `"hangup_cause":"originator_cancel"`, `"hangup_source":"caller"`), call.Canceled, "originator_cancel by caller"},
		{"hangup not_found", telnyxEvent("call.hangup", `"hangup_cause":"not_found"`, `"sip_hangup_cause":"404"`), call.Failed, "not_found, sip 404"},
		{"hangup unspecified", telnyxEvent("call.hangup", `"hangup_cause":"unspecified"`, `"hangup_source":"unknown"`), call.Failed, "unspecified"},
		{"hangup new cause", telnyxEvent("call.hangup", `"hangup_cause":"network_out_of_order"`), call.Failed, "network_out_of_order"},
		{"hangup without cause", telnyxEvent("call.hangup"), call.Failed, "hangup"},
		{"hangup, sip code as a number", telnyxEvent("call.hangup", `"hangup_cause":"user_busy"`, `"sip_hangup_cause":486`), call.Busy, "user_busy, sip 486"},
		{"hangup, hostile cause", telnyxEvent("call.hangup", `"hangup_cause":"a b\"c\n`+strings.Repeat("x", 100)+`"`), call.Failed, "a?b?c?" + strings.Repeat("x", 26)},
		{"bridged", telnyxEvent("call.bridged"), call.Unknown, "call.bridged"},
		{"dtmf", telnyxEvent("call.dtmf.received", `"digit":"#"`), call.Unknown, "call.dtmf.received #"},
		{"dtmf, odd digit", telnyxEvent("call.dtmf.received", `"digit":"1x"`), call.Unknown, "call.dtmf.received 1?"},
		{"streaming.started", telnyxEvent("streaming.started"), call.Unknown, "streaming.started"},
		{"machine detection", telnyxEvent("call.machine.detection.ended", `"result":"human"`), call.Unknown, "call.machine.detection.ended"},
		{"our client_state", telnyxEvent("call.initiated", ourState), call.Initiated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseTelnyxEvent("tx1", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ReportedState(call.Initiated); got != tt.state || e.Detail != tt.detail {
				t.Errorf("state %v detail %q; want %v %q", got, e.Detail, tt.state, tt.detail)
			}
			// Once answered, every hangup is a completed call.
			if got := e.ReportedState(call.InProgress); strings.HasPrefix(tt.name, "hangup") && got != call.Completed {
				t.Errorf("after an answer: state %v, want completed", got)
			}
			if len(e.Detail) > 64 {
				t.Errorf("detail %q is over 64 bytes", e.Detail)
			}
			if e.ID != "tx:0ccc7b54-4df3-4bca-a65a-3da1ecc777f0" || e.Carrier != "tx1" ||
				e.CarrierCallID != "v3:2EC-70CTEjlUq3tDM0CxKXIt5-5N4iP4wo7_-PfH-qub97Sk4EqO5w" || e.Direction != call.Outbound {
				t.Errorf("envelope fields wrong: %+v", e)
			}
			if wantCallID := strings.Contains(tt.name, "our client_state"); (e.CallID == testCallID) != wantCallID {
				t.Errorf("call id %q", e.CallID)
			}
		})
	}
}

func TestTelnyxClientCallID(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		in, want string
	}{
		{b64([]byte(testCallID)), testCallID},
		{strings.TrimRight(b64([]byte(testCallID)), "="), testCallID},
		{b64([]byte("have a nice day =]")), ""},
		{b64([]byte(testCallID + "x")), ""},
		{b64([]byte(strings.ToUpper(testCallID))), ""},
		{testCallID, ""},
		{"!!!!", ""},
		{"", ""},
		{strings.Repeat("A", 1000), ""},
	}
	for _, tt := range tests {
		if got := telnyxClientCallID(tt.in); got != tt.want {
			t.Errorf("telnyxClientCallID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// An answer or hangup without client_state is about a call we never commanded: inbound.
func TestParseTelnyxEventLenient(t *testing.T) {
	tests := []struct {
		name string
		body string
		want call.Event
	}{
		{"null descriptive fields", `{"data":{"id":"e1","event_type":"call.answered","occurred_at":null,"payload":{"call_control_id":"c1","from":null,"to":["+1","+2"],"client_state":null,"direction":{}}}}`,
			call.Event{ID: "tx:e1", Carrier: "c", CarrierCallID: "c1", State: call.InProgress, Direction: call.Inbound}},
		{"unreadable occurred_at", `{"data":{"id":"e1","event_type":"call.answered","occurred_at":"yesterday","payload":{"call_control_id":"c1"}}}`,
			call.Event{ID: "tx:e1", Carrier: "c", CarrierCallID: "c1", State: call.InProgress, Direction: call.Inbound}},
		{"occurred_at with offset", `{"data":{"id":"e1","event_type":"call.answered","occurred_at":"2018-02-02T23:25:27+01:00","payload":{"call_control_id":"c1"}}}`,
			call.Event{ID: "tx:e1", Carrier: "c", CarrierCallID: "c1", State: call.InProgress, Direction: call.Inbound,
				At: time.Date(2018, 2, 2, 22, 25, 27, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTelnyxEvent("c", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTelnyxEventErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string // "" for a JSON error
	}{
		{"empty", ``, ""},
		{"not JSON", `data=1`, ""},
		{"truncated", telnyxEnvelope[:100], ""},
		{"trailing garbage", telnyxEnvelope + `}`, ""},
		{"array", `[]`, ""},
		{"id is a number", `{"data":{"id":1,"event_type":"call.answered","payload":{"call_control_id":"c1"}}}`, ""},
		{"no data", `{}`, "data.id"},
		{"data null", `{"data":null}`, "data.id"},
		{"no id", `{"data":{"event_type":"call.answered","payload":{"call_control_id":"c1"}}}`, "data.id"},
		{"id with space", `{"data":{"id":"e 1","event_type":"call.answered","payload":{"call_control_id":"c1"}}}`, "data.id"},
		{"id too long", `{"data":{"id":"` + strings.Repeat("e", 129) + `","event_type":"call.answered","payload":{"call_control_id":"c1"}}}`, "data.id"},
		{"no event_type", `{"data":{"id":"e1","payload":{"call_control_id":"c1"}}}`, "data.event_type"},
		{"no payload", `{"data":{"id":"e1","event_type":"call.answered"}}`, "data.payload.call_control_id"},
		{"no call_control_id", `{"data":{"id":"e1","event_type":"call.answered","payload":{"from":"+1"}}}`, "data.payload.call_control_id"},
		{"call_control_id with quote", `{"data":{"id":"e1","event_type":"call.answered","payload":{"call_control_id":"c\"1"}}}`, "data.payload.call_control_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTelnyxEvent("c", []byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v, want one wrapping ErrMalformed", err)
			}
			var fe *FormError
			if isField := errors.As(err, &fe); isField != (tt.field != "") || isField && fe.Field != tt.field {
				t.Errorf("error = %v, want field %q", err, tt.field)
			}
		})
	}
}

func BenchmarkParseTelnyxEvent(b *testing.B) {
	body := telnyxEvent("call.hangup", `"hangup_cause":"user_busy"`, `"hangup_source":"callee"`, `"sip_hangup_cause":"486"`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTelnyxEvent("telnyx-1", body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseTelnyxEvent: no input panics; invalid JSON is always rejected, every error is
// ErrMalformed, and an accepted webhook has a well-formed event.
func FuzzParseTelnyxEvent(f *testing.F) {
	f.Add([]byte(telnyxEnvelope))
	f.Add(telnyxEvent("call.hangup", `"hangup_cause":"user_busy"`, `"hangup_source":"callee"`, `"sip_hangup_cause":"486"`))
	f.Add(telnyxEvent("call.dtmf.received", `"digit":"#"`, `"client_state":"`+base64.StdEncoding.EncodeToString([]byte(testCallID))+`"`))
	f.Add([]byte(`{"data":{"id":"e1","event_type":"call.answered","occurred_at":null,"payload":{"call_control_id":"c1","to":["+1"]}}}`))
	f.Add([]byte(`{"data":null}`))
	fixtureSeeds(f, "telnyx/call-*.json", func(b []byte) { f.Add(b) })
	fixtureSeeds(f, "telnyx/streaming-*.json", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseTelnyxEvent("c", body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if !strings.HasPrefix(e.ID, "tx:") || !isToken(e.ID[3:], maxTelnyxEventID) || !isToken(e.CarrierCallID, maxTelnyxCallID) ||
			e.Carrier != "c" || len(e.Detail) > 64 || e.CallID != "" && !isCallID(e.CallID) || !e.At.IsZero() && e.At.Location() != time.UTC {
			t.Fatalf("malformed event %+v", e)
		}
	})
}
