package media

import "testing"

func TestMiddlePowerUsesTheMiddle(t *testing.T) {
	// 1 s of silence, 2 s of 1 kHz, 1 s of silence: only the middle half counts.
	rec := make([]byte, 4*SampleRate)
	FillSilence(rec)
	NewTone(1000, 0.5).Read(rec[SampleRate : 3*SampleRate])
	if p := MiddlePower(rec, 1000); p < 0.2 {
		t.Errorf("middle 1 kHz at %.4f, want about 0.25", p)
	}
	if p := MiddlePower(rec[:100], 1000); p != 0 {
		t.Errorf("short silent recording: %.4f", p)
	}
}
