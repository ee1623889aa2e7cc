package recording

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
)

const (
	callerHz = 1000.0
	agentHz  = 440.0
)

// readChannels reads a recording back as mu-law frames per channel (re-encoded, so the
// media package's tone detection applies).
func readChannels(t *testing.T, path string) (info Info, left, right [][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info, err = ReadInfo(f); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, info.DataLen)
	if _, err := f.ReadAt(data, info.DataOffset); err != nil {
		t.Fatalf("the header says %d bytes of audio: %v", info.DataLen, err)
	}
	for len(data) >= frameBytes {
		l, r := make([]byte, media.FrameSamples), make([]byte, media.FrameSamples)
		for i := range media.FrameSamples {
			l[i] = media.EncodeUlaw(int16(binary.LittleEndian.Uint16(data[i*4:])))
			r[i] = media.EncodeUlaw(int16(binary.LittleEndian.Uint16(data[i*4+2:])))
		}
		left, right = append(left, l), append(right, r)
		data = data[frameBytes:]
	}
	return info, left, right
}

func framesWith(frames [][]byte, hz float64) int {
	n := 0
	for _, f := range frames {
		if media.HasTone(f, hz) {
			n++
		}
	}
	return n
}

func silent(frame []byte) bool {
	for _, b := range frame {
		if media.DecodeUlaw(b) != 0 {
			return false
		}
	}
	return true
}

// A recording of a call where the caller plays 1 kHz and the agent 440 Hz, paused for a while
// in the middle: the left channel carries the caller, the right the agent, the paused span is
// silent on both and listed, and the file is as long as the time it ran.
func TestRecordingChannelsPauseAndLength(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.wav")
	began := time.Now()
	r, err := Start(path)
	if err != nil {
		t.Fatal(err)
	}
	callerTone, agentTone := media.NewTone(callerHz, 0.5), media.NewTone(agentHz, 0.5)
	tick := time.NewTicker(frameDuration)
	for i := range 100 { // 2 s of both sides talking, paused from 0.8 s to 1.4 s
		switch i {
		case 40:
			r.Pause()
		case 70:
			r.Resume()
		}
		r.Caller(callerTone.Frame())
		r.Agent(agentTone.Frame())
		<-tick.C
	}
	tick.Stop()
	sum, err := r.Stop()
	ran := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}

	info, left, right := readChannels(t, path)
	if info.Channels != 2 || info.SampleRate != 8000 || info.BitsPerSample != 16 {
		t.Fatalf("format %+v, want 2 channels of 16-bit 8 kHz", info)
	}
	length := time.Duration(len(left)) * frameDuration
	if length != sum.Duration {
		t.Errorf("the file holds %v of audio, the summary says %v", length, sum.Duration)
	}
	if d := ran - length; d < 0 || d > 200*time.Millisecond {
		t.Errorf("the file holds %v of audio for %v of recording, want within 0.2 s", length, ran)
	}
	if len(sum.Paused) != 1 {
		t.Fatalf("paused spans %+v, want one", sum.Paused)
	}
	span := sum.Paused[0]
	if span.To-span.From < 500*time.Millisecond || span.To > sum.Duration {
		t.Fatalf("paused span %+v of a %v recording, want about 0.6 s", span, sum.Duration)
	}
	from, to := int(span.From/frameDuration), int(span.To/frameDuration)
	for i := from; i < to; i++ {
		if !silent(left[i]) || !silent(right[i]) {
			t.Fatalf("frame %d, in the paused span %+v, is not silent", i, span)
		}
	}
	// Around the pause, both sides talked: most frames carry their side's tone, and no
	// frame carries the other side's.
	talk := append(append([][]byte{}, left[2:from-2]...), left[to+2:len(left)-2]...)
	agentTalk := append(append([][]byte{}, right[2:from-2]...), right[to+2:len(right)-2]...)
	if n := framesWith(talk, callerHz); n < len(talk)*8/10 {
		t.Errorf("the caller's 1 kHz in %d of %d left frames", n, len(talk))
	}
	if n := framesWith(agentTalk, agentHz); n < len(agentTalk)*8/10 {
		t.Errorf("the agent's 440 Hz in %d of %d right frames", n, len(agentTalk))
	}
	if n := framesWith(talk, agentHz) + framesWith(agentTalk, callerHz); n != 0 {
		t.Errorf("%d frames carry the other channel's tone", n)
	}
}

// While a recording runs, the file on disk is a valid WAV holding all but the last second:
// what a process that dies leaves behind.
func TestRecordingIsReadableWhileItRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.wav")
	r, err := Start(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = r.Stop() }()
	tone := media.NewTone(callerHz, 0.5)
	feed := time.NewTicker(frameDuration)
	defer feed.Stop()
	var info Info
	redistest.Eventually(t, 10*time.Second, "the running file's header counts a second of audio", func() bool {
		r.Caller(tone.Frame())
		<-feed.C
		var st os.FileInfo
		if st, err = os.Stat(path); err != nil {
			return false
		}
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		info, err = ReadInfo(f)
		return err == nil && info.DataLen >= int64(time.Second/frameDuration)*frameBytes && st.Size() >= info.DataOffset+info.DataLen
	})
	_, left, _ := readChannels(t, path)
	if framesWith(left, callerHz) == 0 {
		t.Error("the running file holds none of the caller's tone")
	}
}

// A recording never overwrites a file, and a directory it cannot write is an error at once.
func TestRecordingStartRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "call.wav")
	if err := os.WriteFile(path, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Start(path); err == nil {
		_, _ = r.Stop()
		t.Fatal("started over an existing file")
	}
	if b, _ := os.ReadFile(path); string(b) != "not ours" {
		t.Fatal("the existing file changed")
	}
	if _, err := Start(filepath.Join(dir, "missing", "call.wav")); err == nil {
		t.Fatal("started in a directory that does not exist")
	}
}
