package media

// The hold tone: two short soft beeps every four seconds, at a frequency no test or DTMF
// detector confuses with the agent's voice or a digit.
const (
	HoldToneHz        = 620
	holdToneAmplitude = 0.15
	HoldBeepFrames    = 10  // 200 ms
	holdCycleFrames   = 200 // 4 s
)

// HoldTone plays the hold pattern: beep, pause, beep, then silence to the end of the cycle.
type HoldTone struct {
	frame int
	tone  Tone
}

// Reset starts the pattern again from its first beep.
func (h *HoldTone) Reset() { *h = HoldTone{} }

// Next fills out with the pattern's next 20 ms frame.
func (h *HoldTone) Next(out []byte) {
	if h.tone.Freq == 0 {
		h.tone = Tone{Freq: HoldToneHz, Amplitude: holdToneAmplitude}
	}
	if f := h.frame; f < HoldBeepFrames || (f >= 2*HoldBeepFrames && f < 3*HoldBeepFrames) {
		_, _ = h.tone.Read(out) // Tone.Read never fails (io.Reader's shape)
	} else {
		FillSilence(out)
	}
	h.frame = (h.frame + 1) % holdCycleFrames
}
