package recording

import (
	"encoding/binary"
	"io"
)

// The WAV layout: a 44-byte header (RIFF, fmt, data) then interleaved little-endian samples,
// left (caller) first.
const (
	channels       = 2
	bitsPerSample  = 16
	sampleRate     = 8000
	bytesPerFrame  = channels * bitsPerSample / 8 // one sample per channel
	headerLen      = 44
	riffSizeOffset = 4
	dataSizeOffset = 40
)

// header returns a WAV header for dataLen bytes of audio.
func header(dataLen uint32) []byte {
	h := make([]byte, 0, headerLen)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 36+dataLen)
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16) // fmt chunk size
	h = binary.LittleEndian.AppendUint16(h, 1)  // PCM
	h = binary.LittleEndian.AppendUint16(h, channels)
	h = binary.LittleEndian.AppendUint32(h, sampleRate)
	h = binary.LittleEndian.AppendUint32(h, sampleRate*bytesPerFrame) // byte rate
	h = binary.LittleEndian.AppendUint16(h, bytesPerFrame)            // block align
	h = binary.LittleEndian.AppendUint16(h, bitsPerSample)
	h = append(h, "data"...)
	return binary.LittleEndian.AppendUint32(h, dataLen)
}

// patchLengths writes the RIFF and data lengths for dataLen bytes of audio into a header
// already written at the start of w.
func patchLengths(w io.WriterAt, dataLen uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], 36+dataLen)
	if _, err := w.WriteAt(b[:], riffSizeOffset); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:], dataLen)
	_, err := w.WriteAt(b[:], dataSizeOffset)
	return err
}

// Info is what a WAV file's header says.
type Info struct {
	Channels, SampleRate, BitsPerSample int
	DataLen                             int64 // bytes of audio
	DataOffset                          int64
}

// ReadInfo reads the header of a WAV file written by this package (or any plain PCM WAV
// whose data chunk follows fmt).
func ReadInfo(r io.ReaderAt) (Info, error) {
	h := make([]byte, headerLen)
	if _, err := r.ReadAt(h, 0); err != nil {
		return Info{}, err
	}
	if string(h[0:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || string(h[36:40]) != "data" {
		return Info{}, errNotWAV
	}
	return Info{
		Channels:      int(binary.LittleEndian.Uint16(h[22:24])),
		SampleRate:    int(binary.LittleEndian.Uint32(h[24:28])),
		BitsPerSample: int(binary.LittleEndian.Uint16(h[34:36])),
		DataLen:       int64(binary.LittleEndian.Uint32(h[40:44])),
		DataOffset:    headerLen,
	}, nil
}
