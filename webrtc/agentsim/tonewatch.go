package agentsim

import (
	"sync"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// ToneWatch times the gaps of a tone in what an agent hears: a media.ToneWatch that SimAgents
// feed (SimAgentOptions.Watch) while anyone reads it. It is the ear of the person at the
// softphone rather than of one PeerConnection: a softphone that signs in again makes a new
// SimAgent, and giving each the same watch counts the silence in between (the call's audio
// lost with an instance, then found on another) as the person heard it.
type ToneWatch struct {
	mu       sync.Mutex
	w        *media.ToneWatch
	finished bool
}

// NewToneWatch watches for a tone at hz (the caller's tone, say).
func NewToneWatch(hz float64) *ToneWatch { return &ToneWatch{w: media.NewToneWatch(hz)} }

// frame notes a received PCMU payload; frames after Finish are ignored.
func (t *ToneWatch) frame(at time.Time, ulaw []byte) {
	t.mu.Lock()
	if !t.finished {
		t.w.Frame(at, ulaw)
	}
	t.mu.Unlock()
}

// Finish closes the watch at at (the call's end): a tone absent since before at makes a last
// gap. Later frames are ignored.
func (t *ToneWatch) Finish(at time.Time) {
	t.mu.Lock()
	if !t.finished {
		t.w.Finish(at)
		t.finished = true
	}
	t.mu.Unlock()
}

// Gaps returns the gaps so far, oldest first (see media.ToneWatch.Gaps).
func (t *ToneWatch) Gaps() []media.ToneGap {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.Gaps()
}

// LastHeard is when the last frame with the tone arrived; zero if it never did.
func (t *ToneWatch) LastHeard() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.LastHeard()
}
