package held

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// countingStream counts the frames sent to the caller.
type countingStream struct {
	mu     sync.Mutex
	frames int
}

func (s *countingStream) SendAudio([]byte) error {
	s.mu.Lock()
	s.frames++
	s.mu.Unlock()
	return nil
}
func (s *countingStream) Close() error { return nil }

func (s *countingStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

// TestHoldToneWhileQueued: a queued inbound call's caller hears the hold tone from the moment
// its stream starts; the agent who answers stops it, and the call's end stops its goroutine
// (goleak checks at the end).
func TestHoldToneWhileQueued(t *testing.T) {
	host := &testHost{}
	o := agentdb.Offer{Call: "c1", Direction: call.Inbound, State: agentdb.OfferQueued}
	c := New(host, &Options{QueueTimeout: time.Hour, PresenceTTL: time.Hour}, o)
	c.Start(o)
	defer host.shut()
	defer c.Shutdown()
	if !c.IsWaiting() {
		t.Fatal("a queued call is not waiting")
	}
	stream := &countingStream{}
	if _, err := c.StreamStarted(stream); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "the hold tone", func() bool { return stream.count() >= 5 })

	// Answered (as Redis would have it) and joined: the tone stops, and frames go to the agent.
	c.mu.Lock()
	c.phase, c.agent = phaseAnswered, "ann"
	c.mu.Unlock()
	if err := c.Join(t.Context(), "ann", &nullSink{1}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	playing := c.tone != nil
	c.mu.Unlock()
	if playing {
		t.Error("the hold tone plays on with the agent joined")
	}
}
