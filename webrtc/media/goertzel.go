package media

import "math"

// Goertzel returns the power of mu-law audio at freq Hz, normalised so that a pure full-scale
// tone centred on the frequency's bin gives about amplitude². The bin width is
// SampleRate/len(ulaw): 1600 samples (200 ms) give 5 Hz bins, on which both 1000 Hz and
// 440 Hz fall exactly.
func Goertzel(ulaw []byte, freq float64) float64 {
	n := len(ulaw)
	if n == 0 {
		return 0
	}
	k := math.Round(float64(n) * freq / SampleRate)
	c := 2 * math.Cos(2*math.Pi*k/float64(n))
	var s1, s2 float64
	for _, b := range ulaw {
		s0 := float64(DecodeUlaw(b))/32768 + c*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - c*s1*s2) / (float64(n) * float64(n) / 4)
}

// DominantFrequency returns the candidate frequency with the most power in ulaw, and that
// power. It returns 0, 0 when there is no audio or no candidate.
func DominantFrequency(ulaw []byte, candidates []float64) (freq, power float64) {
	for _, f := range candidates {
		if p := Goertzel(ulaw, f); p > power {
			freq, power = f, p
		}
	}
	return freq, power
}

// VoiceBand returns candidate frequencies across the telephone band, 300 Hz to 3400 Hz in
// steps of step Hz, for DominantFrequency.
func VoiceBand(step float64) []float64 {
	var out []float64
	for f := 300.0; f <= 3400; f += step {
		out = append(out, f)
	}
	return out
}

// MiddlePower is Goertzel over the middle of ulaw (about half of it, away from the start-up
// and the last frames), on a multiple of 1600 samples so that 1000 Hz, 440 Hz and the hold
// tone all fall on bin centres.
func MiddlePower(ulaw []byte, hz float64) float64 {
	const window = 1600
	if len(ulaw) < window {
		return Goertzel(ulaw, hz)
	}
	n := max(len(ulaw)/2/window, 1) * window
	start := (len(ulaw) - n) / 2
	return Goertzel(ulaw[start:start+n], hz)
}
