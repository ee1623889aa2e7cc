package media

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDTMFFrequencies(t *testing.T) {
	want := map[byte][2]float64{
		'1': {697, 1209}, '2': {697, 1336}, '3': {697, 1477}, 'A': {697, 1633},
		'4': {770, 1209}, '5': {770, 1336}, '6': {770, 1477}, 'B': {770, 1633},
		'7': {852, 1209}, '8': {852, 1336}, '9': {852, 1477}, 'C': {852, 1633},
		'*': {941, 1209}, '0': {941, 1336}, '#': {941, 1477}, 'D': {941, 1633},
	}
	for d, f := range want {
		lo, hi, ok := DTMFFrequencies(d)
		if !ok || lo != f[0] || hi != f[1] {
			t.Errorf("%c: %v %v %v, want %v", d, lo, hi, ok, f)
		}
	}
	if _, _, ok := DTMFFrequencies('E'); ok {
		t.Error("E has frequencies")
	}
}

func TestDTMFTonesFrames(t *testing.T) {
	var tones DTMFTones
	if err := tones.Add("5#"); err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		f := make([]byte, FrameSamples)
		if !tones.Next(f) {
			break
		}
		frames = append(frames, f)
	}
	perDigit := DTMFToneFrames + DTMFGapFrames
	if len(frames) != 2*perDigit {
		t.Fatalf("%d frames for two digits, want %d", len(frames), 2*perDigit)
	}
	check := func(first int, lo, hi float64) {
		t.Helper()
		tone := slices.Concat(frames[first : first+DTMFToneFrames]...)
		for _, f := range []float64{lo, hi} {
			if p := Goertzel(tone, f); p < 0.03 {
				t.Errorf("%v Hz at %.4f", f, p)
			}
		}
		gap := slices.Concat(frames[first+DTMFToneFrames : first+perDigit]...)
		if !bytes.Equal(gap, bytes.Repeat([]byte{Silence}, len(gap))) {
			t.Error("gap is not silence")
		}
	}
	check(0, 770, 1336)
	check(perDigit, 941, 1477)

	if err := tones.Add("12x"); !errors.Is(err, ErrBadDigit) || tones.Pending() {
		t.Errorf("add(12x) = %v, pending %v", err, tones.Pending())
	}
	if err := tones.Add(strings.Repeat("1", MaxPendingDigits+1)); !errors.Is(err, ErrTooManyDigits) {
		t.Errorf("a flood of digits: %v, want ErrTooManyDigits", err)
	}
}

func TestHoldTonePattern(t *testing.T) {
	var h HoldTone
	frames := make([][]byte, holdCycleFrames+HoldBeepFrames)
	for i := range frames {
		frames[i] = make([]byte, FrameSamples)
		h.Next(frames[i])
	}
	power := func(from int) float64 {
		return Goertzel(slices.Concat(frames[from:from+HoldBeepFrames]...), HoldToneHz)
	}
	for _, beep := range []int{0, 2 * HoldBeepFrames, holdCycleFrames} {
		if p := power(beep); p < 0.015 {
			t.Errorf("beep at frame %d: %.4f", beep, p)
		}
	}
	for _, quiet := range []int{HoldBeepFrames, 3 * HoldBeepFrames, 100} {
		if p := power(quiet); p != 0 {
			t.Errorf("frame %d should be silent: %.4f", quiet, p)
		}
	}
}
