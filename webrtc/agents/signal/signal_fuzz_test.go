package signal

import (
	"encoding/json"
	"testing"
)

// FuzzClientMessage: any text a softphone sends is read as a message or refused, never a
// panic; what is read survives a round trip.
func FuzzClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","token":"ann.00"}`, `{"type":"dial","to":"+15551234567"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}`,
		`{"type":"mute","on":true}`, `{"type":"dtmf","digits":"12#"}`, `[]`, `{"type":1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var m ClientMessage
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		_ = ValidNumber(m.To) // must not panic on any input
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var again ClientMessage
		if err := json.Unmarshal(b, &again); err != nil || again.Type != m.Type || again.To != m.To || again.Token != m.Token {
			t.Fatalf("round trip: %+v → %s → %+v (%v)", m, b, again, err)
		}
	})
}
