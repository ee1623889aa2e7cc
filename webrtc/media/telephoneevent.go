package media

import "encoding/binary"

// RFC 4733 telephone-event payloads: how a browser's keypad (RTCDTMFSender.insertDTMF)
// travels, as 4-byte named events on the audio track's SSRC with their own payload type.

// TelephoneEvent is one RFC 4733 payload (section 2.3):
//
//	 0                   1                   2                   3
//	|     event     |E|R| volume    |          duration             |
type TelephoneEvent struct {
	Event    uint8
	End      bool
	Volume   uint8  // 0..63, in -dBm0
	Duration uint16 // in RTP timestamp units (8 kHz) since the event's start
}

const TelephoneEventLen = 4

// ParseTelephoneEvent reads the first event of an RFC 4733 payload; the payload comes from
// the network, so anything short is refused rather than trusted.
func ParseTelephoneEvent(p []byte) (TelephoneEvent, bool) {
	if len(p) < TelephoneEventLen {
		return TelephoneEvent{}, false
	}
	return TelephoneEvent{
		Event:    p[0],
		End:      p[1]&0x80 != 0,
		Volume:   p[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(p[2:4]),
	}, true
}

// AppendTo appends the event's 4-byte payload to b.
func (e TelephoneEvent) AppendTo(b []byte) []byte {
	flags := e.Volume & 0x3F
	if e.End {
		flags |= 0x80
	}
	b = append(b, e.Event, flags)
	return binary.BigEndian.AppendUint16(b, e.Duration)
}

// dtmfDigits maps RFC 4733 event codes 0..15 to the characters agents and carriers use.
// Event 16 (flash) has no digit and is ignored.
const dtmfDigits = "0123456789*#ABCD"

// EventDigit returns the digit for an RFC 4733 event code.
func EventDigit(code uint8) (string, bool) {
	if int(code) >= len(dtmfDigits) {
		return "", false
	}
	return dtmfDigits[code : code+1], true
}

// DigitEvent returns the RFC 4733 event code for a digit (case-insensitive for A-D).
func DigitEvent(d byte) (uint8, bool) {
	if d >= 'a' && d <= 'd' {
		d -= 'a' - 'A'
	}
	for i := 0; i < len(dtmfDigits); i++ {
		if dtmfDigits[i] == d {
			return uint8(i), true
		}
	}
	return 0, false
}

// DTMFDetector turns the stream of telephone-event packets of one track into digits. A sender
// repeats an event's packets while the key is held and sends the end packet three times
// (RFC 4733 section 2.5.1.4); all of them share the event's RTP timestamp, which is what
// tells one key press from the next.
type DTMFDetector struct {
	active  bool
	ts      uint32
	code    uint8
	emitted bool
}

// packet feeds one telephone-event packet and calls emit for each digit it completes: on the
// first end packet of an event, or, when every end packet of an event was lost, on the first
// packet of the next event.
func (d *DTMFDetector) Packet(ts uint32, payload []byte, emit func(digit string)) {
	ev, ok := ParseTelephoneEvent(payload)
	if !ok {
		return
	}
	if !d.active || ts != d.ts {
		if d.active && !d.emitted {
			if digit, ok := EventDigit(d.code); ok {
				emit(digit)
			}
		}
		*d = DTMFDetector{active: true, ts: ts, code: ev.Event}
	}
	if ev.End && !d.emitted {
		d.emitted = true
		if digit, ok := EventDigit(d.code); ok {
			emit(digit)
		}
	}
}
