package webhooks

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// The carriers' documented payloads; testdata/carriers/README.md says where each comes from.
const carrierFixtures = "testdata/carriers"

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(carrierFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureParams reads a .params fixture: one Name=value a line, value not URL-encoded.
func fixtureParams(t *testing.T, name string) url.Values {
	t.Helper()
	return parseParams(fixture(t, name))
}

func parseParams(b []byte) url.Values {
	v := url.Values{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), "="); ok {
			v.Add(k, val)
		}
	}
	return v
}

// fixtureSeeds hands every fixture matching pattern to add, so the fuzz targets start from
// what the carriers document as well as from our own examples.
func fixtureSeeds(f *testing.F, pattern string, add func([]byte)) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(carrierFixtures, pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures match %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// TestTwilioStatusFixtures sends each documented status callback, signed as Twilio signs it,
// to the status route of a call we placed, and checks the state, ids, time and detail stored.
func TestTwilioStatusFixtures(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	ctx := context.Background()
	for _, tc := range []struct {
		status string
		state  call.State
		detail string
	}{
		{"initiated", call.Initiated, ""},
		{"ringing", call.Ringing, ""},
		{"in-progress", call.InProgress, ""},
		{"completed", call.Completed, "sip 200, duration 49s"},
		{"busy", call.Busy, "sip 486, duration 0s"},
		{"no-answer", call.NoAnswer, "sip 487, duration 0s"},
		{"failed", call.Failed, "sip 404, duration 0s"},
		{"canceled", call.Canceled, "sip 487, duration 0s"},
	} {
		t.Run(tc.status, func(t *testing.T) {
			form := fixtureParams(t, "twilio/status-"+tc.status+".params")
			if form.Get("CallStatus") != tc.status {
				t.Fatalf("fixture reports %q", form.Get("CallStatus"))
			}
			id := store.NewCallID()
			if _, err := h.st.Apply(ctx, call.Event{ID: "placed", CallID: id, State: call.Queued, Direction: call.Outbound}); err != nil {
				t.Fatal(err)
			}
			if err := h.st.ClaimAttempt(ctx, id, "tw", 1); err != nil { // as the placer does
				t.Fatal(err)
			}
			if r := h.twilio("/webhooks/tw/status?sb_call="+id, form, true); r.StatusCode != 204 {
				t.Fatalf("status callback: %d", r.StatusCode)
			}
			c, err := h.st.Call(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			at, _ := time.Parse(time.RFC1123Z, form.Get("Timestamp"))
			last := c.History[len(c.History)-1]
			if c.State != tc.state || c.CarrierCallID != form.Get("CallSid") || c.Carrier != "tw" ||
				last.State != tc.state || !last.At.Equal(at) || last.Detail != tc.detail ||
				last.EventID != "tw:"+form.Get("CallSid")+":"+form.Get("SequenceNumber")+":"+tc.status {
				t.Fatalf("stored %v %s/%s, entry %+v", c.State, c.Carrier, c.CarrierCallID, last)
			}
		})
	}
}

// TestTwilioVoiceFixture answers the documented inbound voice webhook with a stream for the
// call it stores.
func TestTwilioVoiceFixture(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	form := fixtureParams(t, "twilio/voice-inbound.params")
	r := h.twilio("/webhooks/tw/voice", form, true)
	doc := body(r)
	id := store.InboundCallID("tw", form.Get("CallSid"))
	if r.StatusCode != 200 || !strings.Contains(doc, `<Parameter name="sb_call" value="`+id+`"/>`) {
		t.Fatalf("voice webhook: %d %s", r.StatusCode, doc)
	}
	c, err := h.st.Call(context.Background(), id)
	if err != nil || c.State != call.Ringing || c.Direction != call.Inbound || c.From != form.Get("From") || c.To != form.Get("To") {
		t.Fatalf("inbound call %+v %v", c, err)
	}
}

// TestMediaFixtures parses every documented media-stream message of both carriers.
func TestMediaFixtures(t *testing.T) {
	const docPayloadLen = 792 // bytes of audio in Telnyx's documented media frame
	for _, tc := range []struct {
		file  string
		parse func([]byte, *MediaMessage) error
		want  MediaMessage
	}{
		{"twilio/media-connected.json", ParseTwilioMedia, MediaMessage{Kind: MediaConnected}},
		{"twilio/media-start.json", ParseTwilioMedia, MediaMessage{Kind: MediaStart, Sequence: 1,
			StreamID: "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", CarrierCallID: "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
			Encoding: "audio/x-mulaw", Track: "inbound",
			Params: map[string]string{"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}}},
		{"twilio/media-media.json", ParseTwilioMedia, MediaMessage{Kind: MediaAudio, Sequence: 4,
			StreamID: "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", Track: "inbound", Chunk: 2, Timestamp: 5,
			Payload: []byte{0x9e, 0x8f, 0x89, 0x86, 0x86, 0x89, 0x8e, 0x9c, 0xd2}}},
		{"twilio/media-mark.json", ParseTwilioMedia, MediaMessage{Kind: MediaMark, Sequence: 4,
			StreamID: "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", Mark: "my label"}},
		{"twilio/media-stop.json", ParseTwilioMedia, MediaMessage{Kind: MediaStop, Sequence: 5,
			StreamID: "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", CarrierCallID: "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}},
		{"telnyx/media-connected.json", ParseTelnyxMedia, MediaMessage{Kind: MediaConnected}},
		{"telnyx/media-start.json", ParseTelnyxMedia, MediaMessage{Kind: MediaStart, Sequence: 1,
			StreamID: "32DE0DEA-53CB-4B21-89A4-9E1819C043BC", Encoding: "PCMU",
			CarrierCallID: "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"}},
		{"telnyx/media-media.json", ParseTelnyxMedia, MediaMessage{Kind: MediaAudio, Sequence: 4,
			StreamID: "32DE0DEA-53CB-4B21-89A4-9E1819C043BC", Track: "inbound/outbound", Chunk: 2, Timestamp: 5}},
		{"telnyx/media-mark.json", ParseTelnyxMedia, MediaMessage{Kind: MediaMark, Sequence: 5,
			StreamID: "32DE0DEA-53CB-4B21-89A4-9E1819C043BC", Mark: "some_mark_name"}},
		{"telnyx/media-stop.json", ParseTelnyxMedia, MediaMessage{Kind: MediaStop, Sequence: 5,
			StreamID:      "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
			CarrierCallID: "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var got MediaMessage
			if err := tc.parse(fixture(t, tc.file), &got); err != nil {
				t.Fatal(err)
			}
			if tc.file == "telnyx/media-media.json" {
				if len(got.Payload) != docPayloadLen {
					t.Fatalf("payload of %d bytes, want %d", len(got.Payload), docPayloadLen)
				}
				tc.want.Payload = got.Payload
			}
			if !equalMedia(got, tc.want) || got.CallID != "" {
				t.Fatalf("parsed %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

// TestTelnyxEventFixtures sends each documented Call Control webhook, signed, for a call we
// know by its call_control_id, and checks what it does to the call. Every example shares
// one data.id, and dedupe is per call, so each goes to a call of its own.
func TestTelnyxEventFixtures(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	ctx := context.Background()
	for _, tc := range []struct {
		file   string
		before call.State // the call's state when the webhook arrives
		state  call.State
		detail string
	}{
		{"call-initiated-outbound.json", call.Queued, call.Initiated, ""},
		{"call-answered.json", call.Initiated, call.InProgress, ""},
		{"call-hangup.json", call.Initiated, call.NoAnswer, "call_rejected by caller, sip 603"},
		{"call-hangup.json", call.InProgress, call.Completed, "call_rejected by caller, sip 603"},
		{"streaming-started.json", call.InProgress, call.InProgress, "streaming.started"},
		{"streaming-stopped.json", call.InProgress, call.InProgress, "streaming.stopped"},
	} {
		t.Run(tc.file+" after "+tc.before.String(), func(t *testing.T) {
			raw := fixture(t, "telnyx/"+tc.file)
			e, err := ParseTelnyxEvent("tx", raw)
			if err != nil {
				t.Fatal(err)
			}
			// Our call, placed on this carrier and linked to its call_control_id.
			id := store.NewCallID()
			if _, err := h.st.Apply(ctx, call.Event{ID: "placed", CallID: id, State: tc.before, Direction: call.Outbound}); err != nil {
				t.Fatal(err)
			}
			if err := h.st.ClaimAttempt(ctx, id, "tx", 1); err != nil { // as the placer does
				t.Fatal(err)
			}
			if err := h.st.Link(ctx, id, "tx", e.CarrierCallID); err != nil {
				t.Fatal(err)
			}
			if r := h.telnyxPost("/webhooks/tx/events", raw, time.Now()); r.StatusCode != 204 {
				t.Fatalf("webhook: %d", r.StatusCode)
			}
			c, err := h.st.Call(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			last := c.History[len(c.History)-1]
			at, _ := time.Parse(time.RFC3339Nano, "2018-02-02T22:25:27.521992Z")
			if c.State != tc.state || last.EventID != "tx:0ccc7b54-4df3-4bca-a65a-3da1ecc777f0" ||
				last.Detail != tc.detail || !last.At.Equal(at.Truncate(time.Millisecond)) || c.Direction != call.Outbound {
				t.Fatalf("call %v %v, entry %+v", c.State, c.Direction, last)
			}
		})
	}
}

// TestTelnyxInboundFixture: the documented inbound call.initiated stores an inbound call
// under its derived id, indexed by the call_control_id, from the docs' caller.
func TestTelnyxInboundFixture(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	raw := fixture(t, "telnyx/call-initiated-inbound.json")
	if r := h.telnyxPost("/webhooks/tx/events", raw, time.Now()); r.StatusCode != 204 {
		t.Fatalf("webhook: %d", r.StatusCode)
	}
	ccid := "d14dbcee-880b-11eb-8204-02420a0f7568"
	c, err := h.st.CallByCarrierID(context.Background(), ccid, "")
	if err != nil || c.ID != store.InboundCallID("tx", ccid) || c.State != call.Initiated ||
		c.Direction != call.Inbound || c.From != "+1-202-555-0133" || c.To != "+12025550131" {
		t.Fatalf("inbound call %+v %v", c, err)
	}
}
