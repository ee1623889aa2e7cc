package webhooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"unicode/utf8"
)

// Frames as in carrier-protocols.md §3.2 (Twilio) and Telnyx's media streaming reference.
const (
	twilioConnected = `{"event":"connected","protocol":"Call","version":"1.0.0"}`
	twilioStart     = `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0123456789abcdef0123456789abcdef","streamSid":"MZ0123456789abcdef0123456789abcdef","callSid":"CA0123456789abcdef0123456789abcdef","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"FirstName":"Jane","sb_call":"CL0123456789abcdef01234567"}},"streamSid":"MZ0123456789abcdef0123456789abcdef"}`
	twilioMediaF    = `{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpw="},"streamSid":"MZ0123456789abcdef0123456789abcdef"}`
	twilioDTMF      = `{"event":"dtmf","streamSid":"MZ0123456789abcdef0123456789abcdef","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}`
	twilioMarkF     = `{"event":"mark","sequenceNumber":"4","streamSid":"MZ0123456789abcdef0123456789abcdef","mark":{"name":"my label"}}`
	twilioStop      = `{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC0123456789abcdef0123456789abcdef","callSid":"CA0123456789abcdef0123456789abcdef"},"streamSid":"MZ0123456789abcdef0123456789abcdef"}`

	telnyxConnected = `{"event":"connected","version":"1.0.0"}`
	telnyxStart     = `{"event":"start","sequence_number":"1","stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC","start":{"user_id":"3E6F995F-85F7-4705-9741-53B116D28237","call_control_id":"v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ","call_session_id":"ff55a038-6f5d-11ef-9692-02420aeffb1f","from":"+13122010094","to":"+13122123456","tags":["TAG1","TAG2"],"client_state":"aGF2ZSBhIG5pY2UgZGF5ID1d","custom_parameters":{"customer_id":"customer_123"},"media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}}`
	telnyxMediaF    = `{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpw="},"stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC"}`
	telnyxDTMF      = `{"event":"dtmf","stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC","occurred_at":"2025-06-05T08:54:19.698408Z","sequence_number":"5","dtmf":{"digit":"#"}}`
	telnyxMarkF     = `{"event":"mark","sequence_number":"6","stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC","mark":{"name":"greeting"}}`
	telnyxStop      = `{"event":"stop","sequence_number":"7","stop":{"user_id":"3E6F995F-85F7-4705-9741-53B116D28237","call_control_id":"v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"},"stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC"}`
	telnyxErrorF    = `{"event":"error","payload":{"code":100002,"title":"malformed_frame","detail":"The received frame was not formed correctly"},"stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC"}`
)

const (
	testStreamSid = "MZ0123456789abcdef0123456789abcdef"
	testStreamID  = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
	testCCID      = "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"
)

var testAudio = []byte{0x9e, 0x8f, 0x89, 0x86, 0x86, 0x89, 0x8e, 0x9c}

// equalMedia compares two messages, treating nil and empty Payload and Params alike.
func equalMedia(a, b MediaMessage) bool {
	if !bytes.Equal(a.Payload, b.Payload) || !maps.Equal(a.Params, b.Params) {
		return false
	}
	return a.Kind == b.Kind && a.StreamID == b.StreamID && a.CallID == b.CallID && a.CarrierCallID == b.CarrierCallID &&
		a.Track == b.Track && a.Chunk == b.Chunk && a.Timestamp == b.Timestamp && a.Sequence == b.Sequence &&
		a.Digit == b.Digit && a.Mark == b.Mark && a.Detail == b.Detail && a.Encoding == b.Encoding
}

func TestParseTwilioMedia(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want MediaMessage
	}{
		{"connected", twilioConnected, MediaMessage{Kind: MediaConnected}},
		{"start", twilioStart, MediaMessage{Kind: MediaStart, StreamID: testStreamSid, CallID: testCallID, CarrierCallID: testSid,
			Params: map[string]string{"FirstName": "Jane", "sb_call": testCallID}, Track: "inbound", Encoding: "audio/x-mulaw", Sequence: 1}},
		{"start without parameters", `{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"]}}`,
			MediaMessage{Kind: MediaStart, StreamID: "MZ1", CarrierCallID: "CA1", Track: "inbound,outbound"}},
		{"media", twilioMediaF, MediaMessage{Kind: MediaAudio, StreamID: testStreamSid, Payload: testAudio, Track: "inbound", Chunk: 2, Timestamp: 5, Sequence: 4}},
		{"media, numbers as numbers, keys reordered", `{"media":{"payload":"no+JhoaJjpw=","timestamp":5,"chunk":2},"streamSid":"MZ1","event":"media","sequenceNumber":4}`,
			MediaMessage{Kind: MediaAudio, StreamID: "MZ1", Payload: testAudio, Chunk: 2, Timestamp: 5, Sequence: 4}},
		{"media, escaped slash in payload", `{"event":"media","media":{"payload":"\/\/\/\/no+JhoaJjpw="}}`,
			MediaMessage{Kind: MediaAudio, Payload: append([]byte{0xff, 0xff, 0xff}, testAudio...)}},
		{"media, empty payload", `{"event":"media","media":{"payload":""}}`, MediaMessage{Kind: MediaAudio}},
		{"media, no media object", `{"event":"media"}`, MediaMessage{Kind: MediaAudio}},
		{"media, unknown members", `{"event":"media","x":[1,{"y":null}],"media":{"payload":"no+JhoaJjpw=","extra":{"a":[true,false]}}}`,
			MediaMessage{Kind: MediaAudio, Payload: testAudio}},
		{"dtmf", twilioDTMF, MediaMessage{Kind: MediaDTMF, StreamID: testStreamSid, Track: "inbound_track", Digit: "1", Sequence: 5}},
		{"mark", twilioMarkF, MediaMessage{Kind: MediaMark, StreamID: testStreamSid, Mark: "my label", Sequence: 4}},
		{"stop", twilioStop, MediaMessage{Kind: MediaStop, StreamID: testStreamSid, CarrierCallID: testSid, Sequence: 5}},
		{"unknown event", `{"event":"transcription","streamSid":"MZ1","transcription":{"text":"hi"}}`, MediaMessage{Kind: MediaUnknown, StreamID: "MZ1"}},
		{"no event", `{"streamSid":"MZ1"}`, MediaMessage{StreamID: "MZ1"}},
		{"null event", `{"event":null}`, MediaMessage{}},
		{"telnyx spelling is not twilio's", telnyxMediaF, MediaMessage{Kind: MediaAudio, Payload: testAudio, Track: "inbound", Chunk: 2, Timestamp: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got MediaMessage
			if err := ParseTwilioMedia([]byte(tt.raw), &got); err != nil {
				t.Fatal(err)
			}
			if !equalMedia(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseTelnyxMedia(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want MediaMessage
	}{
		{"connected", telnyxConnected, MediaMessage{Kind: MediaConnected}},
		{"start", telnyxStart, MediaMessage{Kind: MediaStart, StreamID: testStreamID, CarrierCallID: testCCID,
			Params: map[string]string{"customer_id": "customer_123"}, Encoding: "PCMU", Sequence: 1}},
		{"start with our client_state", `{"event":"start","stream_id":"s1","start":{"call_control_id":"c1","client_state":"` +
			base64.StdEncoding.EncodeToString([]byte(testCallID)) + `"}}`,
			MediaMessage{Kind: MediaStart, StreamID: "s1", CarrierCallID: "c1", CallID: testCallID}},
		{"start with sb_call parameter", `{"event":"start","stream_id":"s1","start":{"call_control_id":"c1","client_state":null,"custom_parameters":{"sb_call":"` + testCallID + `","n":1}}}`,
			MediaMessage{Kind: MediaStart, StreamID: "s1", CarrierCallID: "c1", CallID: testCallID, Params: map[string]string{"sb_call": testCallID, "n": "1"}}},
		{"media", telnyxMediaF, MediaMessage{Kind: MediaAudio, StreamID: testStreamID, Payload: testAudio, Track: "inbound", Chunk: 2, Timestamp: 5, Sequence: 4}},
		{"dtmf", telnyxDTMF, MediaMessage{Kind: MediaDTMF, StreamID: testStreamID, Digit: "#", Sequence: 5}},
		{"mark", telnyxMarkF, MediaMessage{Kind: MediaMark, StreamID: testStreamID, Mark: "greeting", Sequence: 6}},
		{"stop", telnyxStop, MediaMessage{Kind: MediaStop, StreamID: testStreamID, CarrierCallID: testCCID, Sequence: 7}},
		{"error", telnyxErrorF, MediaMessage{Kind: MediaError, StreamID: testStreamID, Detail: "malformed_frame 100002"}},
		{"error without details", `{"event":"error"}`, MediaMessage{Kind: MediaError}},
		{"unknown event", `{"event":"clear_ack","stream_id":"s1"}`, MediaMessage{StreamID: "s1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got MediaMessage
			if err := ParseTelnyxMedia([]byte(tt.raw), &got); err != nil {
				t.Fatal(err)
			}
			if !equalMedia(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMediaErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{"empty", ``},
		{"not JSON", `event=media`},
		{"truncated", twilioMediaF[:60]},
		{"trailing data", twilioMediaF + `{}`},
		{"null", `null`},
		{"array", `[{"event":"media"}]`},
		{"string", `"media"`},
		{"trailing comma", `{"event":"media",}`},
		{"bad base64", `{"event":"media","media":{"payload":"no+JhoaJjpw"}}`},
		{"base64 with junk", `{"event":"media","media":{"payload":"no+J*oaJjpw="}}`},
		{"payload not a string", `{"event":"media","media":{"payload":12}}`},
		{"media not an object", `{"event":"media","media":"no+JhoaJjpw="}`},
		{"event not a string", `{"event":1}`},
		{"chunk not a number", `{"event":"media","media":{"chunk":"two","payload":""}}`},
		{"negative timestamp", `{"event":"media","media":{"timestamp":-5,"payload":""}}`},
		{"sequence not a number", `{"event":"media","sequenceNumber":"4a","sequence_number":"4a"}`},
		{"invalid JSON in an unknown member", `{"event":"media","x":[1,,2]}`},
		{"invalid JSON in an unknown event", `{"event":"whatever","x":tru}`},
		{"start not an object", `{"event":"start","start":[1]}`},
		{"start, parameters not an object", `{"event":"start","start":{"customParameters":["sb_call"],"custom_parameters":["sb_call"]}}`},
		{"start, malformed sb_call", `{"event":"start","start":{"customParameters":{"sb_call":"CL1"},"custom_parameters":{"sb_call":"CL1"}}}`},
		{"stop not an object", `{"event":"stop","stop":"CA1"}`},
		{"dtmf not an object", `{"event":"dtmf","dtmf":"1"}`},
		{"mark name not a string", `{"event":"mark","mark":{"name":{}}}`},
		{"control character", "{\"event\":\"media\x01\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, parse := range map[string]func([]byte, *MediaMessage) error{"twilio": ParseTwilioMedia, "telnyx": ParseTelnyxMedia} {
				var m MediaMessage
				if err := parse([]byte(tt.raw), &m); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: error = %v, want one wrapping ErrMalformed", name, err)
				}
			}
		})
	}
}

// TestParseMediaReusesMessage checks what the hot path promises: a reused message keeps
// its payload buffer and stream id, and audio frames then allocate nothing.
func TestParseMediaReusesMessage(t *testing.T) {
	frame := AppendTwilioMedia(nil, testStreamSid, bytes.Repeat([]byte{0x7f}, 160))
	var m MediaMessage
	if err := ParseTwilioMedia([]byte(twilioStart), &m); err != nil {
		t.Fatal(err)
	}
	if err := ParseTwilioMedia(frame, &m); err != nil {
		t.Fatal(err)
	}
	buf := &m.Payload[:1][0]
	allocs := testing.AllocsPerRun(100, func() {
		if err := ParseTwilioMedia(frame, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a media frame allocated %v times, want 0", allocs)
	}
	if &m.Payload[:1][0] != buf {
		t.Error("the payload buffer was not reused")
	}
	if m.Kind != MediaAudio || len(m.Payload) != 160 || m.StreamID != testStreamSid || m.Params != nil {
		t.Errorf("reused message wrong after a media frame: %+v", m)
	}
	if err := ParseTwilioMedia([]byte(twilioMarkF), &m); err != nil || m.Kind != MediaMark || len(m.Payload) != 0 || m.Track != "" {
		t.Errorf("reused message not reset by a mark frame: %+v, %v", m, err)
	}
}

func TestAppendMedia(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"twilio media", AppendTwilioMedia(nil, testStreamSid, testAudio), `{"event":"media","streamSid":"MZ0123456789abcdef0123456789abcdef","media":{"payload":"no+JhoaJjpw="}}`},
		{"twilio media, appends", AppendTwilioMedia([]byte("x"), "MZ1", nil), `x{"event":"media","streamSid":"MZ1","media":{"payload":""}}`},
		{"twilio media, escaped sid", AppendTwilioMedia(nil, `M"Z\`, []byte{0}), `{"event":"media","streamSid":"M\"Z\\","media":{"payload":"AA=="}}`},
		{"twilio mark", AppendTwilioMark(nil, "MZ1", "my label"), `{"event":"mark","streamSid":"MZ1","mark":{"name":"my label"}}`},
		{"twilio mark, escaped", AppendTwilioMark(nil, "MZ1", "a\"b\n"), `{"event":"mark","streamSid":"MZ1","mark":{"name":"a\"b\n"}}`},
		{"twilio clear", AppendTwilioClear(nil, "MZ1"), `{"event":"clear","streamSid":"MZ1"}`},
		{"telnyx media", AppendTelnyxMedia(nil, testAudio), `{"event":"media","media":{"payload":"no+JhoaJjpw="}}`},
		{"telnyx mark", AppendTelnyxMark(nil, "greeting"), `{"event":"mark","mark":{"name":"greeting"}}`},
		{"telnyx clear", AppendTelnyxClear(nil), `{"event":"clear"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
			if !json.Valid(bytes.TrimPrefix(tt.got, []byte("x"))) {
				t.Errorf("%s is not valid JSON", tt.got)
			}
		})
	}
}

func TestAppendParseRoundTrip(t *testing.T) {
	audio := bytes.Repeat([]byte{0xff, 0x00, 0x7f, 0x80}, 40)
	var m MediaMessage
	if err := ParseTwilioMedia(AppendTwilioMedia(nil, testStreamSid, audio), &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != MediaAudio || m.StreamID != testStreamSid || !bytes.Equal(m.Payload, audio) {
		t.Errorf("twilio round trip: %+v", m)
	}
	if err := ParseTwilioMedia(AppendTwilioMark(nil, testStreamSid, "bye ☎"), &m); err != nil || m.Kind != MediaMark || m.Mark != "bye ☎" {
		t.Errorf("twilio mark round trip: %+v, %v", m, err)
	}
	if err := ParseTelnyxMedia(AppendTelnyxMedia(nil, audio), &m); err != nil || m.Kind != MediaAudio || !bytes.Equal(m.Payload, audio) {
		t.Errorf("telnyx round trip: %+v, %v", m, err)
	}
	if err := ParseTelnyxMedia(AppendTelnyxMark(nil, "m1"), &m); err != nil || m.Kind != MediaMark || m.Mark != "m1" {
		t.Errorf("telnyx mark round trip: %+v, %v", m, err)
	}
}

func TestMediaKindString(t *testing.T) {
	for k, want := range map[MediaKind]string{
		MediaUnknown: "unknown", MediaConnected: "connected", MediaStart: "start", MediaAudio: "media",
		MediaDTMF: "dtmf", MediaMark: "mark", MediaStop: "stop", MediaError: "error", -1: "unknown", 99: "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("MediaKind(%d).String() = %q, want %q", k, got, want)
		}
		if k >= MediaConnected && k <= MediaError && mediaKindOf([]byte(want)) != k {
			t.Errorf("mediaKindOf(%q) = %v", want, mediaKindOf([]byte(want)))
		}
	}
	if mediaKindOf([]byte("unknown")) != MediaUnknown {
		t.Error(`an event named "unknown" must stay MediaUnknown`)
	}
}

func BenchmarkParseTwilioMedia(b *testing.B) {
	frame := []byte(`{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff, 0x7e, 0x80, 0x01}, 40)) + `"},"streamSid":"` + testStreamSid + `"}`)
	var m MediaMessage
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := ParseTwilioMedia(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTwilioMediaEncodingJSON is the baseline the scanner is measured against:
// the same frame through encoding/json and typed structs.
func BenchmarkParseTwilioMediaEncodingJSON(b *testing.B) {
	frame := []byte(`{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff, 0x7e, 0x80, 0x01}, 40)) + `"},"streamSid":"` + testStreamSid + `"}`)
	var f struct {
		Event, StreamSid, SequenceNumber string
		Media                            struct{ Track, Chunk, Timestamp, Payload string }
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		if err := json.Unmarshal(frame, &f); err != nil {
			b.Fatal(err)
		}
		n, err := base64.StdEncoding.Decode(buf[:cap(buf)], []byte(f.Media.Payload))
		if err != nil || n != 160 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParseTelnyxMedia(b *testing.B) {
	frame := []byte(`{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff, 0x7e, 0x80, 0x01}, 40)) + `"},"stream_id":"` + testStreamID + `"}`)
	var m MediaMessage
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseTelnyxMedia(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendTwilioMedia(b *testing.B) {
	audio := bytes.Repeat([]byte{0xff, 0x7e, 0x80, 0x01}, 40)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTwilioMedia(buf[:0], testStreamSid, audio)
	}
}

// fuzzMedia is the body of both media fuzz targets: no input panics; invalid JSON is
// always rejected and every error is ErrMalformed; a message reused from an earlier frame
// reads the same as a fresh one; and the input itself, as audio, a stream id and a mark
// name, survives the carrier's Append* writer and parser.
func fuzzMedia(t *testing.T, raw []byte, parse func([]byte, *MediaMessage) error,
	appendMedia func(buf []byte, sid string, ulaw []byte) []byte, appendMark func(buf []byte, sid, name string) []byte, withSID bool) {
	var fresh MediaMessage
	err := parse(raw, &fresh)
	if err != nil && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v does not wrap ErrMalformed", err)
	}
	if err == nil && !json.Valid(raw) {
		t.Fatalf("accepted invalid JSON %q", raw)
	}
	// A message left over from an earlier frame, every field set.
	reused := MediaMessage{
		Kind: MediaStart, StreamID: testStreamSid, CallID: testCallID, CarrierCallID: testSid,
		Params: map[string]string{"sb_call": testCallID}, Encoding: "PCMA", Payload: make([]byte, 7, 300),
		Track: "outbound", Chunk: 9, Timestamp: 9, Sequence: 9, Digit: "9", Mark: "m", Detail: "d",
	}
	err2 := parse(raw, &reused)
	if (err == nil) != (err2 == nil) || err == nil && !equalMedia(fresh, reused) {
		t.Fatalf("reused message read %+v, %v; fresh %+v, %v", reused, err2, fresh, err)
	}
	if err == nil && fresh.Kind != MediaAudio && len(fresh.Payload) > 0 {
		t.Fatalf("%v frame with a payload", fresh.Kind)
	}

	sid := string(raw[:min(len(raw), 40)])
	frame := appendMedia(nil, sid, raw)
	if !json.Valid(frame) {
		t.Fatalf("Append wrote invalid JSON %s", frame)
	}
	var m MediaMessage
	if err := parse(frame, &m); err != nil || m.Kind != MediaAudio || !bytes.Equal(m.Payload, raw) {
		t.Fatalf("media round trip: %+v, %v", m, err)
	}
	if withSID && utf8.ValidString(sid) && m.StreamID != sid {
		t.Fatalf("stream id round trip: %q, want %q", m.StreamID, sid)
	}
	name := string(raw)
	if err := parse(appendMark(nil, sid, name), &m); err != nil || m.Kind != MediaMark || utf8.ValidString(name) && m.Mark != name {
		t.Fatalf("mark round trip: %+v, %v", m, err)
	}
}

func mediaSeeds(f *testing.F, frames ...string) {
	for _, s := range frames {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"event":"media","media":{"payload":"\/\/\/\/no+JhoaJjpw=","chunk":2,"timestamp":"5"},"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"event":"start","start":{"customParameters":{"sb_call":"CL1"},"custom_parameters":{"sb_call":"` + testCallID + `"}}}`))
	f.Add([]byte("{\"event\":\"m\\u00e9dia\",\"mark\":{\"name\":\"\xff\"}}"))
	f.Add([]byte(`{"event":"media","media":{"payload":"no+JhoaJjpw"}}`))
	f.Add([]byte(`[[[[[[[[[[]]]]]]]]]]`))
	f.Add([]byte(``))
}

func FuzzParseTwilioMedia(f *testing.F) {
	mediaSeeds(f, twilioConnected, twilioStart, twilioMediaF, twilioDTMF, twilioMarkF, twilioStop)
	fixtureSeeds(f, "twilio/media-*.json", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, raw []byte) {
		fuzzMedia(t, raw, ParseTwilioMedia, AppendTwilioMedia, AppendTwilioMark, true)
	})
}

func FuzzParseTelnyxMedia(f *testing.F) {
	mediaSeeds(f, telnyxConnected, telnyxStart, telnyxMediaF, telnyxDTMF, telnyxMarkF, telnyxStop, telnyxErrorF)
	fixtureSeeds(f, "telnyx/media-*.json", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, raw []byte) {
		fuzzMedia(t, raw, ParseTelnyxMedia,
			func(buf []byte, _ string, ulaw []byte) []byte { return AppendTelnyxMedia(buf, ulaw) },
			func(buf []byte, _, name string) []byte { return AppendTelnyxMark(buf, name) }, false)
	})
}
