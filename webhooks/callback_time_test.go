package webhooks

import (
	"testing"
	"time"
)

// TestParseCallbackTime covers the timestamp forms carriers document: Twilio's RFC 2822 and
// Telnyx TeXML's ISO 8601, with a 'T' or with a space as in Telnyx's TeXML examples.
func TestParseCallbackTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		// twilio.com/docs/voice/api/call-resource (and a captured 2018 callback)
		{"Sun, 25 Mar 2018 09:53:19 +0000", time.Date(2018, 3, 25, 9, 53, 19, 0, time.UTC)},
		{"Mon, 05 Nov 2018 14:47:01 GMT", time.Date(2018, 11, 5, 14, 47, 1, 0, time.UTC)},
		// developers.telnyx.com/api-reference/callbacks/texml-call-initiated
		{"2024-01-15T10:30:00Z", time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)},
		// developers.telnyx.com/docs/voice/programmable-voice/texml-verbs/hangup
		{"2021-04-28 21:51:18.731479Z", time.Date(2021, 4, 28, 21, 51, 18, 731479000, time.UTC)},
		{"2021-04-28 21:51:18 +0000", time.Date(2021, 4, 28, 21, 51, 18, 0, time.UTC)},
		{"2021-04-28 23:51:18+02:00", time.Date(2021, 4, 28, 21, 51, 18, 0, time.UTC)},
		{"2021-04-28 21:51:18", time.Date(2021, 4, 28, 21, 51, 18, 0, time.UTC)},
		{"", time.Time{}},
		{"yesterday", time.Time{}},
	} {
		if got := parseCallbackTime(tc.in); !got.Equal(tc.want) {
			t.Errorf("parseCallbackTime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
