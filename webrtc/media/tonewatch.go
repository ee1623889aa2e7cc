package media

import "time"

// Tone watch thresholds. A 20 ms frame holds the watched tone when the tone's Goertzel power
// (about amplitude² for a pure tone) is at least ToneMinPower, -30 dBFS, and at least half of
// the frame's energy is at the tone's frequency: quiet hiss, silence, other tones and voice all
// fail one of the two. The simulator sends its tone at amplitude 0.5 (power about 0.25), far
// above the floor; a frame cut in two by a switch of stream still passes.
const (
	ToneMinPower  = 0.001
	ToneMinPurity = 0.5
	// ToneGapMin is the shortest stretch without the tone counted as a gap: frames arriving
	// late by one frame's worth (network jitter, a busy machine) are not silence anyone hears.
	ToneGapMin = 60 * time.Millisecond
)

// frameDuration is how long one frame of FrameSamples plays.
const frameDuration = time.Second * FrameSamples / SampleRate

// ToneGap is a stretch, after the tone was first heard, during which it was absent: no frame
// arrived, or frames arrived without the tone. Start is when the last frame with the tone had
// played out (its arrival plus one frame), Length how long until the next frame with the tone
// arrived (or the watch was finished).
type ToneGap struct {
	Start  time.Time     `json:"start"`
	Length time.Duration `json:"length_ns"`
}

// ToneWatch watches a stream of 20 ms mu-law frames for a pure tone and records its gaps, by
// the frames' arrival times, so frames that stop arriving count as silence. It is not safe for
// concurrent use; the zero ToneWatch is not usable: use NewToneWatch.
type ToneWatch struct {
	hz    float64
	heard bool
	last  time.Time // arrival of the last frame with the tone
	gaps  []ToneGap
}

// NewToneWatch watches for a tone at hz.
func NewToneWatch(hz float64) *ToneWatch { return &ToneWatch{hz: hz} }

// HasTone reports whether frame (mu-law, ideally FrameSamples long) holds a pure tone at hz.
func HasTone(frame []byte, hz float64) bool {
	if len(frame) == 0 {
		return false
	}
	p := Goertzel(frame, hz)
	if p < ToneMinPower {
		return false
	}
	var energy float64
	for _, b := range frame {
		v := float64(DecodeUlaw(b)) / 32768
		energy += v * v
	}
	// A pure tone of amplitude A has mean square A²/2 and Goertzel power about A².
	return p >= ToneMinPurity*2*energy/float64(len(frame))
}

// Frame notes a frame that arrived at at, and reports whether it held the tone.
func (w *ToneWatch) Frame(at time.Time, frame []byte) bool {
	if !HasTone(frame, w.hz) {
		return false
	}
	if w.heard {
		w.gap(at)
	}
	w.heard, w.last = true, at
	return true
}

// Finish closes the watch at at (the end of the call): a tone absent since before at makes a
// last gap. Frame may not be called after it.
func (w *ToneWatch) Finish(at time.Time) {
	if w.heard {
		w.gap(at)
		w.heard = false
	}
}

func (w *ToneWatch) gap(at time.Time) {
	start := w.last.Add(frameDuration)
	if d := at.Sub(start); d >= ToneGapMin {
		w.gaps = append(w.gaps, ToneGap{Start: start, Length: d})
	}
}

// Heard reports whether the tone has been heard at all.
func (w *ToneWatch) Heard() bool { return w.heard || len(w.gaps) > 0 }

// LastHeard is the arrival of the last frame that held the tone; zero if it was never heard.
func (w *ToneWatch) LastHeard() time.Time { return w.last }

// Gaps returns the gaps so far, oldest first; the caller may keep the slice.
func (w *ToneWatch) Gaps() []ToneGap { return append([]ToneGap(nil), w.gaps...) }

// Longest is the longest gap so far; 0 if none.
func (w *ToneWatch) Longest() time.Duration {
	var d time.Duration
	for _, g := range w.gaps {
		d = max(d, g.Length)
	}
	return d
}
