package sim

import (
	"math"
	"testing"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// A beep heard only at the start (as the hold tone's are) is the loudest 200 ms, while the
// middle of the audio, which the dominant frequency looks at, is silent; both survive the
// end of the call.
func TestLoudestFindsABeepTheMiddleMisses(t *testing.T) {
	beep := make([]byte, 2*analysisLen) // 400 ms of 620 Hz
	media.NewTone(620, 0.3).Read(beep)
	quiet := make([]byte, 8*analysisLen)
	media.FillSilence(quiet)
	m := &mediaStats{recorded: append(beep, quiet...)}

	if hz, power := m.loudest(); math.Abs(hz-620) > 5 || power < 0.01 {
		t.Fatalf("loudest = %.0f Hz at %.4f, want the 620 Hz beep", hz, power)
	}
	if _, power := m.dominant(); power > 0.001 {
		t.Fatalf("the middle of the audio is silent, yet its power is %.4f", power)
	}
	m.end(time.Now())
	if hz, _ := m.loudest(); math.Abs(hz-620) > 5 {
		t.Fatalf("after the end the loudest is %.0f Hz", hz)
	}
}
