package agentsim

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// TestToneWatchAcrossAgents feeds one watch as two SimAgents in turn would (a softphone that
// signed in again): the silence between them is one gap, and frames after Finish change
// nothing.
func TestToneWatchAcrossAgents(t *testing.T) {
	w := NewToneWatch(1000)
	tone := media.NewTone(1000, 0.5)
	at := time.Unix(1000, 0)
	feed := func(n int) {
		for range n {
			at = at.Add(20 * time.Millisecond)
			w.frame(at, tone.Frame())
		}
	}
	feed(25) // the first agent
	last := at
	at = at.Add(1500 * time.Millisecond) // no agent: the softphone signs in again
	feed(25)                             // the second agent
	if got := w.LastHeard(); !got.Equal(at) {
		t.Errorf("last heard %v, want %v", got, at)
	}
	gaps := w.Gaps()
	if len(gaps) != 1 || !gaps[0].Start.Equal(last.Add(20*time.Millisecond)) || gaps[0].Length != 1500*time.Millisecond {
		t.Fatalf("gaps %+v, want one of 1.5s after %v", gaps, last)
	}
	w.Finish(at.Add(time.Second))
	feed(5)
	if gaps := w.Gaps(); len(gaps) != 2 || gaps[1].Length != time.Second-20*time.Millisecond {
		t.Errorf("after Finish: gaps %+v, want the trailing one and no more", gaps)
	}
}
