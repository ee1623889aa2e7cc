package agents

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/media"
)

// toneSink is another agent's side joined to a held call: it speaks a tone into the call
// every 20 ms, as a session's bridge does, and records what it hears.
type toneSink struct {
	c          *held.Call
	mu         sync.Mutex
	got        []byte
	ended      string
	stop, done chan struct{}
	stopOnce   sync.Once
}

func newToneSink(t *testing.T, c *held.Call, hz float64) *toneSink {
	k := &toneSink{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		tone := media.NewTone(hz, 0.5)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-tick.C:
				_ = k.c.AudioFrom(k, tone.Frame())
			}
		}
	}()
	t.Cleanup(k.close)
	return k
}

func (k *toneSink) close() { k.stopOnce.Do(func() { close(k.stop) }); <-k.done }

func (k *toneSink) Audio(ulaw []byte) {
	k.mu.Lock()
	k.got = append(k.got, ulaw...)
	k.mu.Unlock()
}
func (k *toneSink) DTMF(string) {}
func (k *toneSink) Ended(reason string) {
	k.mu.Lock()
	k.ended = reason
	k.mu.Unlock()
}
func (k *toneSink) Moved() {}

func (k *toneSink) recent(n int) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.got[max(0, len(k.got)-n):])
}

func (k *toneSink) reset() {
	k.mu.Lock()
	k.got = nil
	k.mu.Unlock()
}

func (k *toneSink) endedWith() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ended
}

// Tones: the caller 1000 Hz, the call's agent 440 Hz, the agent who joins 1800 Hz.
const callerHz, annHz, bobHz = 1000, 440, 1800

const (
	heardPower  = 0.02
	absentPower = 0.001
)

// hears checks, on the last 400 ms of a leg's audio, which of the three tones it hears.
func hears(t *testing.T, who string, audio []byte, want map[float64]bool) {
	t.Helper()
	for hz, on := range want {
		p := power(audio, hz)
		if on && p < heardPower || !on && p > absentPower {
			t.Errorf("%s hears %.0f Hz at %.4f, want heard=%v", who, hz, p, on)
		}
	}
}

// TestHeldCallBecomesARoom: a third party joins an answered call; each of the three hears the
// other two and not itself (mixed minus self); the caller on hold hears the hold tone while
// the two agents hear each other; when the third leaves the call is a plain relay again; when
// the caller hangs up, every leg is told.
func TestHeldCallBecomesARoom(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, stream := answeredBy(t, h, ann, annHz)
	c := h.held(id)
	if c == nil {
		t.Fatal("the call is not held here")
	}

	// Conference: three legs, mixed.
	bob := newToneSink(t, c, bobHz)
	if err := c.AddLeg(bob, media.RoleTalk); err != nil {
		t.Fatal(err)
	}
	const window = 3200 // 400 ms
	settle := func(what string, bobIn bool) {
		t.Helper()
		stream.reset()
		bob.reset()
		ann.Agent.ResetRecording()
		redistest.Eventually(t, 5*time.Second, what, func() bool {
			return len(stream.recent(1<<20)) >= 2*window && (!bobIn || len(bob.recent(1<<20)) >= 2*window) &&
				len(ann.Agent.Recording()) >= 2*window
		})
	}
	settle("the room's audio", true)
	hears(t, "the caller", stream.recent(window), map[float64]bool{annHz: true, bobHz: true, callerHz: false})
	hears(t, "ann", last(ann.Agent.Recording(), window), map[float64]bool{callerHz: true, bobHz: true, annHz: false})
	hears(t, "bob", bob.recent(window), map[float64]bool{callerHz: true, annHz: true, bobHz: false})

	// Consult: the caller on hold hears the hold tone; the agents hear each other only.
	if err := c.HoldCaller(true); err != nil {
		t.Fatal(err)
	}
	settle("the consult's audio", true)
	if p := power(stream.recent(1 << 20)[2*media.FrameSamples:][:1600], media.HoldToneHz); p < 0.01 {
		t.Errorf("the caller on hold does not hear the hold tone (%.4f)", p)
	}
	hears(t, "the held caller", stream.recent(window), map[float64]bool{annHz: false, bobHz: false})
	hears(t, "ann in the consult", last(ann.Agent.Recording(), window), map[float64]bool{callerHz: false, bobHz: true})
	hears(t, "bob in the consult", bob.recent(window), map[float64]bool{callerHz: false, annHz: true})

	// Back to the caller, and the third leaves: a plain relay again.
	if err := c.HoldCaller(false); err != nil {
		t.Fatal(err)
	}
	c.RemoveLeg(bob)
	if c.IsRoom() {
		t.Fatal("the room outlived its third leg")
	}
	settle("the relay's audio", false)
	hears(t, "the caller after", stream.recent(window), map[float64]bool{annHz: true, bobHz: false, callerHz: false})
	hears(t, "ann after", last(ann.Agent.Recording(), window), map[float64]bool{callerHz: true, bobHz: false})
	if n := len(bob.recent(1 << 20)); n != 0 {
		t.Errorf("bob still hears the call after leaving it: %d bytes", n)
	}

	// The call ends with a joined leg: it is told too.
	carol := newToneSink(t, c, bobHz)
	if err := c.AddLeg(carol, media.RoleTalk); err != nil {
		t.Fatal(err)
	}
	stream.hangUp()
	expect(t, ann, "the end", typed(signal.TypeEnded, id))
	redistest.Eventually(t, 5*time.Second, "the joined leg told of the end", func() bool { return carol.endedWith() == held.ReasonHangup })
	if err := c.AddLeg(bob, media.RoleTalk); err == nil {
		t.Error("joined an ended call")
	}
}

func last(b []byte, n int) []byte { return b[max(0, len(b)-n):] }
