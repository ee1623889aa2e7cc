package media

import (
	"bytes"
	"testing"
)

func TestTelephoneEventRoundTrip(t *testing.T) {
	// The end packet Chrome sends for '1' (research notes §3.5): 01 8a 03 20.
	want := []byte{0x01, 0x8a, 0x03, 0x20}
	ev, ok := ParseTelephoneEvent(want)
	if !ok || ev != (TelephoneEvent{Event: 1, End: true, Volume: 10, Duration: 800}) {
		t.Fatalf("parse = %+v, %v", ev, ok)
	}
	if got := ev.AppendTo(nil); !bytes.Equal(got, want) {
		t.Errorf("append = % x, want % x", got, want)
	}
	if _, ok := ParseTelephoneEvent([]byte{1, 2, 3}); ok {
		t.Error("parsed a 3-byte payload")
	}
}

func TestDigitsAndEvents(t *testing.T) {
	for code := range uint8(16) {
		d, ok := EventDigit(code)
		if !ok {
			t.Fatalf("no digit for event %d", code)
		}
		if back, ok := DigitEvent(d[0]); !ok || back != code {
			t.Errorf("digit %q -> event %d, want %d", d, back, code)
		}
	}
	if _, ok := EventDigit(16); ok {
		t.Error("flash (16) has a digit")
	}
	if c, ok := DigitEvent('b'); !ok || c != 13 {
		t.Errorf("lower-case b = %d, %v", c, ok)
	}
	if _, ok := DigitEvent('x'); ok {
		t.Error("x is a digit")
	}
}

func TestDTMFDetector(t *testing.T) {
	type pkt struct {
		ts    uint32
		event uint8
		end   bool
	}
	tests := []struct {
		name string
		pkts []pkt
		want string
	}{
		{"one press, three end packets", []pkt{{100, 5, false}, {100, 5, false}, {100, 5, true}, {100, 5, true}, {100, 5, true}}, "5"},
		{"two presses of the same key", []pkt{{100, 5, false}, {100, 5, true}, {100, 5, true}, {900, 5, false}, {900, 5, true}}, "55"},
		{"every end packet lost", []pkt{{100, 1, false}, {100, 1, false}, {900, 2, false}, {900, 2, true}}, "12"},
		{"end packets only", []pkt{{100, 11, true}, {100, 11, true}, {100, 11, true}}, "#"},
		{"flash is not a digit", []pkt{{100, 16, true}, {900, 10, true}}, "*"},
		{"no end yet", []pkt{{100, 3, false}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d DTMFDetector
			got := ""
			for _, p := range tt.pkts {
				payload := TelephoneEvent{Event: p.event, End: p.end, Volume: 10, Duration: 160}.AppendTo(nil)
				d.Packet(p.ts, payload, func(digit string) { got += digit })
			}
			if got != tt.want {
				t.Errorf("digits %q, want %q", got, tt.want)
			}
		})
	}
}

// The payload comes from the agent's browser: anything must be survivable, and every digit
// reported must be a real one.
func FuzzDTMFDetector(f *testing.F) {
	f.Add([]byte{0x01, 0x8a, 0x03, 0x20}, uint32(7))
	f.Add([]byte{0xff, 0xff}, uint32(0))
	f.Add([]byte{0x0b, 0x80, 0x00, 0x00, 0x0b, 0x80}, uint32(1<<31))
	f.Fuzz(func(t *testing.T, payload []byte, ts uint32) {
		var d DTMFDetector
		for i := range 3 {
			d.Packet(ts+uint32(i/2), payload, func(digit string) {
				if len(digit) != 1 {
					t.Fatalf("digit %q", digit)
				}
				if _, ok := DigitEvent(digit[0]); !ok {
					t.Fatalf("digit %q is not a DTMF digit", digit)
				}
			})
		}
	})
}
