package media

// SampleRate is G.711's sample rate in Hz.
const SampleRate = 8000

// FrameSamples is the number of samples (and mu-law bytes) in a 20 ms frame, the frame size
// carriers and RTP use.
const FrameSamples = SampleRate / 50

// Silence is the mu-law byte for a zero sample.
const Silence byte = 0xFF

const (
	ulawBias = 0x84  // added before the segment search so every segment has a leading 1
	ulawClip = 32635 // largest magnitude that survives the bias without overflow
)

// EncodeUlaw compresses one 16-bit linear sample into a mu-law byte (ITU-T G.711).
func EncodeUlaw(s int16) byte {
	x := int(s)
	var sign byte
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, ulawClip) + ulawBias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := byte(x>>(exp+3)) & 0x0F
	return ^(sign | byte(exp)<<4 | mant)
}

// DecodeUlaw expands a mu-law byte into a 16-bit linear sample.
func DecodeUlaw(b byte) int16 {
	b = ^b
	exp := (b >> 4) & 0x07
	x := ((int(b&0x0F) << 3) + ulawBias) << exp
	x -= ulawBias
	if b&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}
