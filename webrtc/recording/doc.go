// Package recording writes a call to a two-channel WAV file while the call runs: the
// caller on the left channel, the agent side on the right, 16-bit linear PCM at 8 kHz, on a
// clock of its own so the file is as long as the call, whatever the two sides' frames did.
//
// The file is a valid WAV at every moment after its first second: the audio is flushed and
// the header's lengths brought up to date once a second, so a process that dies loses at most
// the last second. Paused spans (an agent taking a card number) are written as silence on
// both channels and listed in the Summary.
//
// It is not a media plane: it only receives copies of the frames the held call already
// relays, and never blocks the goroutine that hands them over.
package recording
