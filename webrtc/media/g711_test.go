package media

import (
	"math"
	"testing"
)

func TestEncodeUlawKnownValues(t *testing.T) {
	tests := []struct {
		in   int16
		want byte
	}{
		{0, 0xFF},
		{-1, 0x7F},
		{100, 0xF2},
		{-100, 0x72},
		{1000, 0xCE},
		{-1000, 0x4E},
		{32124, 0x80},
		{32767, 0x80},  // clipped
		{-32768, 0x00}, // clipped
	}
	for _, tt := range tests {
		if got := EncodeUlaw(tt.in); got != tt.want {
			t.Errorf("EncodeUlaw(%d) = %#02x, want %#02x", tt.in, got, tt.want)
		}
	}
}

func TestDecodeUlawKnownValues(t *testing.T) {
	tests := []struct {
		in   byte
		want int16
	}{
		{0xFF, 0},
		{0x7F, 0},
		{0xF2, 104},
		{0xCE, 988},
		{0x80, 32124},
		{0x00, -32124},
	}
	for _, tt := range tests {
		if got := DecodeUlaw(tt.in); got != tt.want {
			t.Errorf("DecodeUlaw(%#02x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestUlawRoundTripError(t *testing.T) {
	// Within the unclipped range the error is at most half a quantisation step, and a step
	// is 1/16 of the segment's biased base, so |error| <= (|s|+bias)/32.
	for s := -ulawClip; s <= ulawClip; s++ {
		got := int(DecodeUlaw(EncodeUlaw(int16(s))))
		bound := (abs(s)+ulawBias)/32 + 1
		if abs(got-s) > bound {
			t.Fatalf("round trip of %d gave %d, error %d > %d", s, got, abs(got-s), bound)
		}
	}
}

func TestEveryCodeSurvivesDecodeEncode(t *testing.T) {
	for b := range 256 {
		want := byte(b)
		if want == 0x7F { // negative zero decodes to 0, which encodes as positive zero
			want = 0xFF
		}
		if got := EncodeUlaw(DecodeUlaw(byte(b))); got != want {
			t.Errorf("EncodeUlaw(DecodeUlaw(%#02x)) = %#02x", b, got)
		}
	}
}

func TestGoertzelHearsTheTone(t *testing.T) {
	audio := make([]byte, 1600)
	NewTone(1000, 0.5).Read(audio)
	if p := Goertzel(audio, 1000); math.Abs(p-0.25) > 0.02 {
		t.Errorf("power at 1000 Hz = %.3f, want about 0.25", p)
	}
	if p := Goertzel(audio, 440); p > 0.01 {
		t.Errorf("power at 440 Hz = %.3f, want < 0.01", p)
	}
	if f, _ := DominantFrequency(audio, VoiceBand(10)); f != 1000 {
		t.Errorf("dominant frequency = %v, want 1000", f)
	}
}

func TestToneKeepsPhaseAcrossFrames(t *testing.T) {
	// 20 ms of 440 Hz is 8.8 cycles: a tone that restarted its phase each frame would click
	// every frame and lose much of its power at 440 Hz.
	tone := NewTone(440, 0.5)
	var audio []byte
	for range 10 {
		audio = append(audio, tone.Frame()...)
	}
	if p := Goertzel(audio, 440); p < 0.2 {
		t.Errorf("power at 440 Hz over 10 frames = %.3f, want about 0.25", p)
	}
	if f, _ := DominantFrequency(audio, VoiceBand(10)); f != 440 {
		t.Errorf("dominant frequency = %v, want 440", f)
	}
}

func TestSilenceAndEmptyInput(t *testing.T) {
	if p := Goertzel(nil, 1000); p != 0 {
		t.Errorf("Goertzel(nil) = %v", p)
	}
	silence := make([]byte, 1600)
	for i := range silence {
		silence[i] = Silence
	}
	if f, p := DominantFrequency(silence, VoiceBand(10)); f != 0 || p != 0 {
		t.Errorf("DominantFrequency(silence) = %v, %v; want 0, 0", f, p)
	}
	var zero Tone
	if f := zero.Frame(); f[0] != Silence || f[len(f)-1] != Silence {
		t.Error("the zero Tone is not silent")
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
