package media

import (
	"testing"
	"time"
)

func TestHasTone(t *testing.T) {
	silence := make([]byte, FrameSamples)
	FillSilence(silence)
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"1 kHz", NewTone(1000, 0.5).Frame(), true},
		{"quiet 1 kHz", NewTone(1000, 0.05).Frame(), true},
		{"440 Hz off its bin centre", NewTone(440, 0.5).Frame(), false},
		{"silence", silence, false},
		{"below the floor", NewTone(1000, 0.01).Frame(), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := HasTone(tt.frame, 1000); got != tt.want {
			t.Errorf("%s: HasTone = %v", tt.name, got)
		}
	}
	if !HasTone(NewTone(440, 0.5).Frame(), 440) {
		t.Error("440 Hz not heard at 440 Hz")
	}
	// The tone under loud noise of another frequency is not a pure tone.
	mix := NewTone(1000, 0.2).Frame()
	other := NewTone(2300, 0.6).Frame()
	for i := range mix {
		mix[i] = EncodeUlaw(DecodeUlaw(mix[i]) + DecodeUlaw(other[i]))
	}
	if HasTone(mix, 1000) {
		t.Error("a tone drowned in another counted as the tone")
	}
}

func TestToneWatchGaps(t *testing.T) {
	tone := NewTone(1000, 0.5)
	silence := make([]byte, FrameSamples)
	FillSilence(silence)
	w := NewToneWatch(1000)
	at := time.Unix(1000, 0)
	step := func(n int, frame func() []byte) {
		for range n {
			at = at.Add(20 * time.Millisecond)
			if frame != nil {
				w.Frame(at, frame())
			}
		}
	}
	step(10, func() []byte { return silence }) // before the tone is first heard: no gap
	step(50, tone.Frame)
	step(1, nil) // one late frame: jitter, not a gap
	step(50, tone.Frame)
	step(100, nil)                             // 2 s with no frame at all (the stream switch)
	step(50, func() []byte { return silence }) // then 1 s of frames without the tone
	step(50, tone.Frame)
	lastTone := at
	step(25, func() []byte { return silence }) // the tone stops 0.5 s before the end
	w.Finish(at)
	if !w.LastHeard().Equal(lastTone) {
		t.Errorf("last heard %v, want %v", w.LastHeard(), lastTone)
	}

	got := w.Gaps()
	if len(got) != 2 {
		t.Fatalf("gaps %v, want 2", got)
	}
	// The gap runs from the end of the last tone frame to the arrival of the next one.
	if got[0].Length != 3*time.Second {
		t.Errorf("switch gap %v, want 3s", got[0].Length)
	}
	if got[1].Length != 500*time.Millisecond-20*time.Millisecond {
		t.Errorf("trailing gap %v", got[1].Length)
	}
	if w.Longest() != 3*time.Second || !w.Heard() {
		t.Errorf("longest %v heard %v", w.Longest(), w.Heard())
	}
	if NewToneWatch(1000).Heard() || !NewToneWatch(1000).LastHeard().IsZero() {
		t.Error("a new watch has heard the tone")
	}
}
