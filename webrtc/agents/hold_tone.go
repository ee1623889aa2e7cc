package agents

import (
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// The hold tone: what a caller hears while the call waits for an agent, played into the
// carrier stream by a goroutine of its own, paced every 20 ms.

// tonePlayer plays the hold tone to the carrier while the caller waits for an agent.
type tonePlayer struct {
	stop, done chan struct{}
}

func (c *heldCall) startToneLocked() {
	r := c.stream.Load()
	if c.tone != nil || r == nil || !c.hub.enter() {
		return
	}
	t := &tonePlayer{stop: make(chan struct{}), done: make(chan struct{})}
	c.tone = t
	go func() {
		defer c.hub.wg.Done()
		defer close(t.done)
		var hold media.HoldTone
		frame := make([]byte, media.FrameSamples)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				hold.Next(frame)
				// A stream that cannot take the tone has ended, and says so through Stopped.
				_ = r.s.SendAudio(frame)
			}
		}
	}()
}

func (c *heldCall) stopToneLocked() {
	if c.tone != nil {
		close(c.tone.stop)
		<-c.tone.done
		c.tone = nil
	}
}
