package media

import (
	"errors"
	"math"
)

// In-band DTMF, made frame by frame in place of the agent's voice: Twilio media streams carry
// no out-of-band digits towards the carrier, so a keypad press has to be heard.

// In-band DTMF timing and level: 100 ms of tone and 60 ms of silence per digit are well inside
// what carrier detectors accept (Q.24 asks for at least 40 ms each), and two tones at 0.25
// of full scale each (about -15 dBm0) sit in the range telephone keypads send.
const (
	DTMFToneFrames = 5 // 100 ms
	DTMFGapFrames  = 3 // 60 ms
	dtmfAmplitude  = 0.25
	// MaxPendingDigits bounds SendDTMF's queue: a long string of digits is a mistake or an
	// attack, not a person at a keypad.
	MaxPendingDigits = 64
)

// ErrBadDigit is returned for a DTMF digit outside 0-9, *, #, A-D.
var ErrBadDigit = errors.New("media: not a DTMF digit")

// ErrTooManyDigits is returned when SendDTMF's queue is full.
var ErrTooManyDigits = errors.New("media: too many DTMF digits queued")

// DTMFFrequencies returns a digit's low (row) and high (column) frequencies (ITU-T Q.23).
func DTMFFrequencies(d byte) (lo, hi float64, ok bool) {
	code, ok := DigitEvent(d)
	if !ok {
		return 0, 0, false
	}
	rows := [4]float64{697, 770, 852, 941}
	cols := [4]float64{1209, 1336, 1477, 1633}
	// Keypad position of each event code 0-9 * # A B C D, as row*4+column.
	pos := [16]uint8{13, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 14, 3, 7, 11, 15}
	p := pos[code]
	return rows[p/4], cols[p%4], true
}

// DTMFTones plays queued digits as in-band DTMF, one 20 ms frame at a time.
type DTMFTones struct {
	queue  []byte // digits still to play, the current one first
	frame  int    // frames of the current digit already played
	lo, hi float64
	phLo   float64
	phHi   float64
}

func (t *DTMFTones) Pending() bool { return len(t.queue) > 0 }

// add queues digits after checking every one of them.
func (t *DTMFTones) Add(digits string) error {
	for i := 0; i < len(digits); i++ {
		if _, _, ok := DTMFFrequencies(digits[i]); !ok {
			return ErrBadDigit
		}
	}
	if len(t.queue)+len(digits) > MaxPendingDigits {
		return ErrTooManyDigits
	}
	t.queue = append(t.queue, digits...)
	return nil
}

// next fills out (a 20 ms frame) with the next frame of the current digit. It reports false
// when nothing is queued.
func (t *DTMFTones) Next(out []byte) bool {
	if len(t.queue) == 0 {
		return false
	}
	if t.frame == 0 {
		t.lo, t.hi, _ = DTMFFrequencies(t.queue[0]) // Add checked every queued digit
		t.phLo, t.phHi = 0, 0
	}
	if t.frame < DTMFToneFrames {
		stepLo := 2 * math.Pi * t.lo / SampleRate
		stepHi := 2 * math.Pi * t.hi / SampleRate
		for i := range out {
			s := dtmfAmplitude * 32767 * (math.Sin(t.phLo) + math.Sin(t.phHi))
			out[i] = EncodeUlaw(int16(s))
			t.phLo += stepLo
			t.phHi += stepHi
		}
	} else {
		FillSilence(out)
	}
	t.frame++
	if t.frame == DTMFToneFrames+DTMFGapFrames {
		t.queue = t.queue[1:]
		t.frame = 0
	}
	return true
}

// FillSilence fills b with mu-law silence.
func FillSilence(b []byte) {
	for i := range b {
		b[i] = Silence
	}
}
