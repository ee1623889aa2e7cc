package held

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
)

// A held call's carrier side: the stream a carrier opens for the call (one at a time, and
// maybe several in turn), the frames it carries both ways, and what its end means: the call
// moved to another instance, the call lives on and its stream is asked for again, or the call
// is over.

// MediaReceiver receives one carrier media stream's frames, in order, from one goroutine. It
// has the methods of the webhooks' media receiver, so the wiring can hand it over as it is.
type MediaReceiver interface {
	Audio(ulaw []byte)
	DTMF(digit string)
	Stopped()
}

// Stream is a carrier's media stream for one call (webhooks.MediaStream).
type Stream interface {
	SendAudio(ulaw []byte) error
	Close() error
}

// outlivedStream is a carrier stream whose end does not by itself end the call: a Telnyx call
// stays up without media until a new stream or a hang-up, and a Twilio call waits in the
// <Pause> after </Connect> for a re-point (webhooks.MediaStream says so for both).
type outlivedStream interface{ CallOutlivesStream() bool }

// StreamStarted takes the call's carrier media stream.
func (c *Call) StreamStarted(s Stream) (MediaReceiver, error) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return nil, ErrCallOver
	}
	if c.stream.Load() != nil {
		c.mu.Unlock()
		return nil, errors.New("agents: a second media stream for the call")
	}
	ref := &streamRef{s: s}
	if o, ok := s.(outlivedStream); ok {
		ref.outlived = o.CallOutlivesStream()
	}
	c.stream.Store(ref)
	if c.streamTimer != nil {
		c.streamTimer.Stop()
		c.streamTimer = nil
	}
	sink := c.sink.Load()
	unattached := sink == nil
	if c.inbound && unattached {
		c.startToneLocked()
	}
	if l, ok := c.legLocked(sink); ok && l.ringing() {
		c.startToneLocked() // back after a move while its number rings (resumeNumber)
	}
	summon := c.phase == phaseAnswered && unattached
	agent := c.agent
	c.mu.Unlock()
	if summon {
		// The agent's session attaches when it hears the media is here.
		c.host.Background(OpTimeout, func(ctx context.Context) {
			p, err := c.opts.Store.Presence(ctx, agent)
			if err == nil && p.Instance != "" {
				c.host.Send(p.Instance, Notice{Type: NoticeAttach, Call: c.id, Agent: agent,
					Holder: c.opts.Instance, HolderURL: c.opts.PublicURL})
			}
		})
	}
	return &streamReceiver{c: c, ref: ref}, nil
}

// streamReceiver takes one carrier stream's frames for its call; a call may have several
// streams one after another (re-pointed, or its stream started again).
type streamReceiver struct {
	c   *Call
	ref *streamRef
}

func (r *streamReceiver) Audio(ulaw []byte) { r.c.Audio(ulaw) }
func (r *streamReceiver) DTMF(digit string) { r.c.DTMF(digit) }
func (r *streamReceiver) Stopped()          { r.c.stopped(r.ref) }

// sendAudio sends the agent's audio to the carrier; before the stream exists it is dropped.
func (c *Call) sendAudio(ulaw []byte) error {
	c.recordAgent(ulaw)
	if r := c.stream.Load(); r != nil {
		return r.s.SendAudio(ulaw)
	}
	return nil
}

// AudioFrom sends the audio of the agent side sink: to the room while the call is one,
// otherwise to the carrier if sink is the call's agent (a side that has just left is not).
func (c *Call) AudioFrom(sink Sink, ulaw []byte) error {
	if r := c.room.Load(); r != nil && r.put(sink, ulaw) {
		return nil
	}
	if cur := c.sink.Load(); cur == nil || cur.s != sink {
		return nil
	}
	return c.sendAudio(ulaw)
}

// Audio forwards a carrier frame to the agent's side, if one is attached, or to the room.
func (c *Call) Audio(ulaw []byte) {
	c.recordCaller(ulaw)
	if rm := c.room.Load(); rm != nil {
		rm.put(nil, ulaw)
		return
	}
	if r := c.sink.Load(); r != nil {
		r.s.Audio(ulaw)
	}
}

// DTMF forwards a digit the caller pressed.
func (c *Call) DTMF(digit string) {
	if r := c.sink.Load(); r != nil {
		r.s.DTMF(digit)
	}
}

// stopped: the carrier's stream ref ended. For a call re-anchored on another instance (this
// one is stopping, or was taken for dead) that is the carrier moving the stream there: the
// call lets go here, quietly. A call that outlives its stream ends with its record (the
// call-ended wake-up, callChanged), and if it is still live a while later its stream is asked
// for again. Any other stream's end is the end of the call.
func (c *Call) stopped(ref *streamRef) {
	if r := c.stream.Load(); r != ref {
		return // an earlier stream, already replaced
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o, err := c.opts.Store.Offer(ctx, c.id)
	live := err == nil && o.State != agentdb.OfferEnded
	switch {
	case live && o.Holder != "" && o.Holder != c.opts.Instance:
		c.Moved()
	case live && ref.outlived:
		c.streamLost(ref)
	default:
		c.End(ReasonHangup, EndStreamGone)
	}
}

// streamGrace is how long a call whose stream stopped waits for its record to end (or for a
// new stream) before its stream is asked for again.
const streamGrace = 3 * time.Second

// streamLost: a call's stream stopped but the call lives on.
func (c *Call) streamLost(ref *streamRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == phaseEnded || c.stream.Load() != ref {
		return
	}
	c.stopToneLocked()
	c.stream.Store(nil)
	if c.streamTimer != nil {
		c.streamTimer.Stop()
	}
	c.streamTimer = c.host.After(streamGrace, c.restream)
}

// restream asks the carrier to stream a call that lost its stream to this instance again.
func (c *Call) restream() {
	c.mu.Lock()
	waiting := c.phase != phaseEnded && c.stream.Load() == nil
	c.mu.Unlock()
	if !waiting {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	if err := c.opts.Carriers.Repoint(ctx, c.id, c.opts.PublicURL); err != nil {
		c.opts.Log.Warn("agents: a call that lost its stream could not get it back", "call", c.id, "err", err)
		c.End(ReasonMediaLost, EndStreamGone)
	}
}

// Moved: the call's media now goes to another instance. It ends here without ending the call:
// no offer change, no carrier action; the agent's side is told to follow it.
func (c *Call) Moved() {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return
	}
	c.phase = phaseEnded
	c.stopTimersLocked()
	c.stopToneLocked()
	stream := c.stream.Swap(nil)
	sink := c.sink.Swap(nil)
	others := c.closeRoomLocked(sink)
	consult, consultInst, consultRinging := c.consult, c.consultInstance, c.consultSink == nil
	c.consult, c.consultInstance, c.consultSink = "", "", nil
	c.mu.Unlock()
	c.host.Forget(c)
	c.opts.Log.Info("agents: call's media moved to another instance", "call", c.id)
	c.host.Background(OpTimeout, func(ctx context.Context) { c.stopRecording(ctx, store.RecordingMoved) })
	if consult != "" {
		// The consult does not follow the call: the offer forgets it, and a consulted agent
		// still ringing stops.
		c.host.Background(OpTimeout, func(ctx context.Context) {
			if err := c.opts.Store.EndConsult(ctx, c.id, consult); err != nil {
				c.opts.Log.Warn("agents: consult of a moved call not ended", "call", c.id, "err", err)
			}
			if consultRinging {
				c.host.Send(consultInst, Notice{Type: NoticeEnded, Call: c.id, Agent: consult, Reason: ReasonMediaLost})
			}
		})
	}
	if sink != nil {
		sink.s.Moved()
	}
	for _, o := range others {
		// A consult or conference does not survive a move: the room's other legs end
		// there, and the call's own agent follows it, and so do its monitors.
		if f, ok := o.(Follower); ok && f.FollowsMoves() {
			o.Moved()
			continue
		}
		o.Ended(ReasonMediaLost)
	}
	if stream != nil {
		_ = stream.s.Close() // the carrier has moved on from it; closing ours changes nothing
	}
}

// HasStream reports whether a carrier stream is connected for the call here.
func (c *Call) HasStream() bool { return c.stream.Load() != nil }

// legLocked returns the number leg that is the call's agent side sink, if it is one.
func (c *Call) legLocked(sink *sinkRef) (*Leg, bool) {
	if c.phase != phaseNumber || sink == nil {
		return nil, false
	}
	l, ok := sink.s.(*Leg)
	return l, ok
}
