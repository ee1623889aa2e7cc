package webhooks

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

const (
	testSid    = "CA0123456789abcdef0123456789abcdef"
	testCallID = "CL0123456789abcdef01234567"
)

// callback builds a status callback body from name/value pairs on top of the fields every
// callback has; a value of "\x00" removes the field.
func callback(pairs ...string) []byte {
	v := url.Values{
		"AccountSid": {"AC0123456789abcdef0123456789abcdef"}, "ApiVersion": {"2010-04-01"},
		"CallSid": {testSid}, "CallStatus": {"ringing"}, "CallbackSource": {"call-progress-events"},
		"Direction": {"outbound-api"}, "From": {"+15557654321"}, "To": {"+15551234567"},
		"Caller": {"+15557654321"}, "Called": {"+15551234567"}, "SequenceNumber": {"1"},
		"Timestamp": {"Sun, 25 Mar 2018 09:53:19 +0000"},
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "\x00" {
			v.Del(pairs[i])
		} else {
			v.Set(pairs[i], pairs[i+1])
		}
	}
	return []byte(v.Encode())
}

func TestParseTwilioCallbackRealistic(t *testing.T) {
	got, err := ParseTwilioCallback("twilio-1", []byte("sb_call="+testCallID), realisticStatusCallback())
	if err != nil {
		t.Fatal(err)
	}
	want := call.Event{
		ID:            "tw:" + testSid + ":3:completed",
		CallID:        testCallID,
		Carrier:       "twilio-1",
		CarrierCallID: testSid,
		State:         call.Completed,
		Direction:     call.Outbound,
		From:          "+15557654321",
		To:            "+15551234567",
		At:            time.Date(2018, 3, 25, 9, 53, 19, 0, time.UTC),
		Detail:        "sip 200, duration 49s",
	}
	if got != want {
		t.Fatalf("ParseTwilioCallback =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseTwilioCallback(t *testing.T) {
	tests := []struct {
		name  string
		query string
		body  []byte
		check func(t *testing.T, e call.Event)
	}{
		{"status only", "", []byte("CallSid=" + testSid + "&CallStatus=queued"), func(t *testing.T, e call.Event) {
			want := call.Event{ID: "tw:" + testSid + "::queued", Carrier: "c", CarrierCallID: testSid, State: call.Queued}
			if e != want {
				t.Errorf("got %+v, want %+v", e, want)
			}
		}},
		{"sequence zero", "", callback("CallStatus", "initiated", "SequenceNumber", "0"), func(t *testing.T, e call.Event) {
			if e.ID != "tw:"+testSid+":0:initiated" || e.State != call.Initiated {
				t.Errorf("got %+v", e)
			}
		}},
		{"in-progress", "", callback("CallStatus", "in-progress", "SequenceNumber", "2"), func(t *testing.T, e call.Event) {
			if e.ID != "tw:"+testSid+":2:in-progress" || e.State != call.InProgress || e.Detail != "" {
				t.Errorf("got %+v", e)
			}
		}},
		{"busy", "", callback("CallStatus", "busy", "SipResponseCode", "486", "CallDuration", "0"), func(t *testing.T, e call.Event) {
			if e.State != call.Busy || e.Detail != "sip 486, duration 0s" {
				t.Errorf("got %+v", e)
			}
		}},
		{"no-answer", "", callback("CallStatus", "no-answer", "SipResponseCode", "487"), func(t *testing.T, e call.Event) {
			if e.State != call.NoAnswer || e.Detail != "sip 487" {
				t.Errorf("got %+v", e)
			}
		}},
		{"failed, nonsense sip code", "", callback("CallStatus", "failed", "SipResponseCode", "99999"), func(t *testing.T, e call.Event) {
			if e.State != call.Failed || e.Detail != "" {
				t.Errorf("got %+v", e)
			}
		}},
		{"canceled, duration with leading zeros", "", callback("CallStatus", "canceled", "CallDuration", "007"), func(t *testing.T, e call.Event) {
			if e.State != call.Canceled || e.Detail != "duration 7s" {
				t.Errorf("got %+v", e)
			}
		}},
		{"unreadable duration left out", "", callback("CallStatus", "completed", "CallDuration", "49.5"), func(t *testing.T, e call.Event) {
			if e.Detail != "" {
				t.Errorf("detail %q", e.Detail)
			}
		}},
		{"inbound", "", callback("Direction", "inbound"), func(t *testing.T, e call.Event) {
			if e.Direction != call.Inbound {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"outbound-dial", "", callback("Direction", "outbound-dial"), func(t *testing.T, e call.Event) {
			if e.Direction != call.Outbound {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"trunking-originating", "", callback("Direction", "trunking-originating"), func(t *testing.T, e call.Event) {
			if e.Direction != call.Inbound {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"trunking-terminating", "", callback("Direction", "trunking-terminating"), func(t *testing.T, e call.Event) {
			if e.Direction != call.Outbound {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"future outbound kind", "", callback("Direction", "outbound-sip"), func(t *testing.T, e call.Event) {
			if e.Direction != call.Outbound {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"unknown direction", "", callback("Direction", "sideways"), func(t *testing.T, e call.Event) {
			if e.Direction != call.UnknownDirection {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"no direction", "", callback("Direction", "\x00"), func(t *testing.T, e call.Event) {
			if e.Direction != call.UnknownDirection {
				t.Errorf("direction %v", e.Direction)
			}
		}},
		{"timestamp other zone", "", callback("Timestamp", "Sun, 25 Mar 2018 11:53:19 +0200"), func(t *testing.T, e call.Event) {
			if !e.At.Equal(time.Date(2018, 3, 25, 9, 53, 19, 0, time.UTC)) || e.At.Location() != time.UTC {
				t.Errorf("at %v", e.At)
			}
		}},
		{"timestamp one-digit day", "", callback("Timestamp", "Mon, 5 Nov 2018 14:47:00 +0000"), func(t *testing.T, e call.Event) {
			if !e.At.Equal(time.Date(2018, 11, 5, 14, 47, 0, 0, time.UTC)) {
				t.Errorf("at %v", e.At)
			}
		}},
		{"timestamp GMT", "", callback("Timestamp", "Mon, 05 Nov 2018 14:47:00 GMT"), func(t *testing.T, e call.Event) {
			if !e.At.Equal(time.Date(2018, 11, 5, 14, 47, 0, 0, time.UTC)) {
				t.Errorf("at %v", e.At)
			}
		}},
		{"timestamp ISO 8601 (Telnyx TeXML)", "", callback("Timestamp", "2024-01-15T10:30:00Z"), func(t *testing.T, e call.Event) {
			if !e.At.Equal(time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)) {
				t.Errorf("at %v", e.At)
			}
		}},
		{"unreadable timestamp left out", "", callback("Timestamp", "yesterday"), func(t *testing.T, e call.Event) {
			if !e.At.IsZero() {
				t.Errorf("at %v", e.At)
			}
		}},
		{"Telnyx TeXML call sid", "", callback("CallSid", "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ", "SequenceNumber", "2", "CallStatus", "in-progress"),
			func(t *testing.T, e call.Event) {
				if e.CarrierCallID != "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ" || e.ID != "tw:v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ:2:in-progress" {
					t.Errorf("got %+v", e)
				}
			}},
		{"client From", "", callback("From", "client:alice", "To", "sip:bob@example.com;transport=tls"), func(t *testing.T, e call.Event) {
			if e.From != "client:alice" || e.To != "sip:bob@example.com;transport=tls" {
				t.Errorf("from %q to %q", e.From, e.To)
			}
		}},
		{"sb_call among other query parameters", "foo=1&sb_call=" + testCallID + "&bar=2", callback(), func(t *testing.T, e call.Event) {
			if e.CallID != testCallID {
				t.Errorf("call id %q", e.CallID)
			}
		}},
		{"no sb_call", "foo=1", callback(), func(t *testing.T, e call.Event) {
			if e.CallID != "" {
				t.Errorf("call id %q", e.CallID)
			}
		}},
		{"sb_attempt names the attempt", "sb_call=" + testCallID + "&sb_attempt=2", callback(), func(t *testing.T, e call.Event) {
			if e.CallID != testCallID || e.Attempt != 2 {
				t.Errorf("call id %q attempt %d", e.CallID, e.Attempt)
			}
		}},
		{"no sb_attempt (a URL from before attempts)", "sb_call=" + testCallID, callback(), func(t *testing.T, e call.Event) {
			if e.Attempt != 0 {
				t.Errorf("attempt %d", e.Attempt)
			}
		}},
		{"first of a repeated field wins", "", append(callback("CallStatus", "ringing"), "&CallStatus=completed"...), func(t *testing.T, e call.Event) {
			if e.State != call.Ringing {
				t.Errorf("state %v", e.State)
			}
		}},
		{"encoded key", "", []byte("Call%53id=" + testSid + "&CallStatus=busy"), func(t *testing.T, e call.Event) {
			if e.CarrierCallID != testSid || e.State != call.Busy {
				t.Errorf("got %+v", e)
			}
		}},
		{"unrelated malformed field ignored", "", append(callback(), "&Junk=%zz"...), func(t *testing.T, e call.Event) {
			if e.State != call.Ringing {
				t.Errorf("got %+v", e)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseTwilioCallback("c", []byte(tt.query), tt.body)
			if err != nil {
				t.Fatalf("ParseTwilioCallback: %v", err)
			}
			if e.Carrier != "c" {
				t.Errorf("carrier %q", e.Carrier)
			}
			if len(e.Detail) > 64 {
				t.Errorf("detail %q is over 64 bytes", e.Detail)
			}
			tt.check(t, e)
		})
	}
}

func TestParseTwilioCallbackErrors(t *testing.T) {
	tests := []struct {
		name  string
		query string
		body  []byte
		field string
	}{
		{"empty body", "", nil, "CallSid"},
		{"no CallSid", "", callback("CallSid", "\x00"), "CallSid"},
		{"empty CallSid", "", callback("CallSid", ""), "CallSid"},
		{"CallSid with space", "", callback("CallSid", "CA 123"), "CallSid"},
		{"CallSid with slash", "", callback("CallSid", "../../etc"), "CallSid"},
		{"CallSid too long", "", callback("CallSid", "CA"+strings.Repeat("0", 63)), "CallSid"},
		{"CallSid bad escape", "", []byte("CallSid=CA%2&CallStatus=busy"), "CallSid"},
		{"no CallStatus", "", callback("CallStatus", "\x00"), "CallStatus"},
		{"empty CallStatus", "", callback("CallStatus", ""), "CallStatus"},
		{"unknown CallStatus", "", callback("CallStatus", "answered"), "CallStatus"},
		{"CallStatus unknown is not a state", "", callback("CallStatus", "unknown"), "CallStatus"},
		{"CallStatus wrong case", "", callback("CallStatus", "Completed"), "CallStatus"},
		{"SequenceNumber not a number", "", callback("SequenceNumber", "3a"), "SequenceNumber"},
		{"SequenceNumber negative", "", callback("SequenceNumber", "-1"), "SequenceNumber"},
		{"From bad escape", "", []byte("CallSid=" + testSid + "&CallStatus=busy&From=%2"), "From"},
		{"Timestamp bad escape", "", []byte("CallSid=" + testSid + "&CallStatus=busy&Timestamp=2024-01-15T10:30:00Z%zz"), "Timestamp"},
		{"Direction bad escape", "", []byte("CallSid=" + testSid + "&CallStatus=busy&Direction=inbound%"), "Direction"},
		{"CallDuration bad escape", "", []byte("CallSid=" + testSid + "&CallStatus=busy&CallDuration=4%9"), "CallDuration"},
		{"sb_call uppercase", "sb_call=CL0123456789ABCDEF01234567", callback(), "sb_call"},
		{"sb_call short", "sb_call=CL0123", callback(), "sb_call"},
		{"sb_call empty", "sb_call=", callback(), "sb_call"},
		{"sb_call bad escape", "sb_call=%zz", callback(), "sb_call"},
		{"sb_attempt not a number", "sb_attempt=x", callback(), "sb_attempt"},
		{"sb_attempt zero", "sb_attempt=0", callback(), "sb_attempt"},
		{"sb_attempt empty", "sb_attempt=", callback(), "sb_attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTwilioCallback("c", []byte(tt.query), tt.body)
			var fe *FormError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("error = %v, want a FormError for %s", err, tt.field)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// TestParseTwilioCallbackIDs is the property the store's deduplication relies on: a retry
// is the same event, and distinct callbacks of one call are distinct events.
func TestParseTwilioCallbackIDs(t *testing.T) {
	id := func(body []byte) string {
		t.Helper()
		e, err := ParseTwilioCallback("c", nil, body)
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	first := callback("CallStatus", "ringing", "SequenceNumber", "1")
	if id(first) != id(callback("SequenceNumber", "1", "CallStatus", "ringing", "Timestamp", "Sun, 25 Mar 2018 09:53:20 +0000")) {
		t.Error("a retry (same sid, sequence and status) got a different id")
	}
	seen := map[string]string{}
	for _, b := range [][]byte{
		first,
		callback("CallStatus", "in-progress", "SequenceNumber", "2"),
		callback("CallStatus", "completed", "SequenceNumber", "3"),
		callback("CallStatus", "completed", "SequenceNumber", "\x00"),
		callback("CallStatus", "ringing", "SequenceNumber", "\x00"),
		callback("CallStatus", "ringing", "SequenceNumber", "1", "CallSid", "CAffffffffffffffffffffffffffffffff"),
	} {
		got := id(b)
		if prev, dup := seen[got]; dup {
			t.Errorf("id %q for both %q and %q", got, prev, b)
		}
		seen[got] = string(b)
	}
}

func BenchmarkParseTwilioCallback(b *testing.B) {
	body := realisticStatusCallback()
	query := []byte("sb_call=" + testCallID)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseTwilioCallback("twilio-1", query, body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseTwilioCallback: no input panics; every error is ErrMalformed; an accepted
// callback has a well-formed event that agrees with net/url's reading of the same form,
// and re-encoding the event as a callback parses back to the same event.
func FuzzParseTwilioCallback(f *testing.F) {
	f.Add([]byte("sb_call="+testCallID), realisticStatusCallback())
	f.Add([]byte(""), callback("CallStatus", "busy", "SipResponseCode", "486", "CallDuration", "0"))
	f.Add([]byte("foo=1"), callback("CallSid", "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ", "Timestamp", "2024-01-15T10:30:00Z"))
	f.Add([]byte("sb_call=CL1"), []byte("Call%53id=CA1&CallStatus=queued&SequenceNumber=&From=%zz"))
	f.Add([]byte(nil), []byte("CallSid=CA1&CallStatus=completed&CallStatus=busy&;&&=&Direction=trunking-originating"))
	fixtureSeeds(f, "twilio/*.params", func(b []byte) { f.Add([]byte("sb_call="+testCallID), []byte(parseParams(b).Encode())) })
	f.Fuzz(func(t *testing.T, query, body []byte) {
		e, err := ParseTwilioCallback("c", query, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			checkNetURLAgreesOnRejection(t, query, body)
			return
		}
		if !isCallSid([]byte(e.CarrierCallID)) || e.State == call.Unknown || e.Carrier != "c" || len(e.Detail) > 64 ||
			e.CallID != "" && !isCallID(e.CallID) || !strings.HasPrefix(e.ID, "tw:"+e.CarrierCallID+":") ||
			!strings.HasSuffix(e.ID, ":"+e.State.String()) || e.At.Location() != time.UTC {
			t.Fatalf("malformed event %+v", e)
		}
		seq := strings.TrimSuffix(strings.TrimPrefix(e.ID, "tw:"+e.CarrierCallID+":"), ":"+e.State.String())
		if v, err := url.ParseQuery(string(body)); err == nil {
			if v.Get("CallSid") != e.CarrierCallID || v.Get("CallStatus") != e.State.String() || v.Get("SequenceNumber") != seq ||
				v.Get("From") != e.From || v.Get("To") != e.To {
				t.Fatalf("event %+v disagrees with net/url's %v", e, v)
			}
		}

		again := url.Values{"CallSid": {e.CarrierCallID}, "CallStatus": {e.State.String()}, "From": {e.From}, "To": {e.To}}
		if seq != "" {
			again.Set("SequenceNumber", seq)
		}
		if !e.At.IsZero() {
			again.Set("Timestamp", e.At.Format(time.RFC3339Nano))
		}
		switch e.Direction {
		case call.Inbound:
			again.Set("Direction", "inbound")
		case call.Outbound:
			again.Set("Direction", "outbound-api")
		}
		var q []byte
		if e.CallID != "" {
			q = []byte("sb_call=" + e.CallID)
		}
		e2, err := ParseTwilioCallback("c", q, []byte(again.Encode()))
		e.Detail = ""
		if err != nil || e2 != e {
			t.Fatalf("re-encoded callback parsed to %+v, %v; want %+v", e2, err, e)
		}
	})
}

// checkNetURLAgreesOnRejection fails if net/url reads body as a callback with every
// required field well-formed, which ParseTwilioCallback has just rejected.
func checkNetURLAgreesOnRejection(t *testing.T, query, body []byte) {
	t.Helper()
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return
	}
	q, err := url.ParseQuery(string(query))
	if err != nil || q.Has("sb_call") {
		return
	}
	if _, err := call.ParseState(v.Get("CallStatus")); err != nil || !isCallSid([]byte(v.Get("CallSid"))) {
		return
	}
	if seq := v.Get("SequenceNumber"); seq != "" {
		if _, ok := parseDigits([]byte(seq)); !ok {
			return
		}
	}
	t.Fatalf("rejected a callback net/url reads as well-formed: %v", v)
}
