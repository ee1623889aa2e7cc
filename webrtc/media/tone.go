package media

import "math"

// Tone generates a sine wave as mu-law audio, keeping its phase from one frame to the next so
// that consecutive frames join without clicks. The zero Tone is silent.
type Tone struct {
	// Freq is the frequency in Hz.
	Freq float64
	// Amplitude is the peak level, 0..1 of full scale.
	Amplitude float64

	phase float64
}

// NewTone returns a tone at freq Hz and the given amplitude (0..1).
func NewTone(freq, amplitude float64) *Tone {
	return &Tone{Freq: freq, Amplitude: amplitude}
}

// Read fills p with the next len(p) samples of the tone; it never fails.
func (t *Tone) Read(p []byte) (int, error) {
	step := 2 * math.Pi * t.Freq / SampleRate
	for i := range p {
		p[i] = EncodeUlaw(int16(t.Amplitude * 32767 * math.Sin(t.phase)))
		t.phase += step
	}
	t.phase = math.Mod(t.phase, 2*math.Pi)
	return len(p), nil
}

// Frame returns the next 20 ms (FrameSamples bytes) of the tone.
func (t *Tone) Frame() []byte {
	p := make([]byte, FrameSamples)
	_, _ = t.Read(p) // never fails
	return p
}
