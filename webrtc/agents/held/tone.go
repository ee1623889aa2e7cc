package held

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

func (c *Call) startToneLocked() {
	r := c.stream.Load()
	if c.tone != nil || r == nil {
		return
	}
	t := &tonePlayer{stop: make(chan struct{}), done: make(chan struct{})}
	if c.host.Go(func() {
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
	}) {
		c.tone = t
	}
}

func (c *Call) stopToneLocked() {
	if c.tone != nil {
		close(c.tone.stop)
		<-c.tone.done
		c.tone = nil
	}
}
