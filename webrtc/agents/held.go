package agents

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/media"
)

// MediaReceiver receives one carrier media stream's frames, in order, from one goroutine. It
// has the methods of the webhooks' media receiver, so the wiring can hand it over as it is.
type MediaReceiver interface {
	Audio(ulaw []byte)
	DTMF(digit string)
	Stopped()
}

// carrierStream is a carrier's media stream for one call (webhooks.MediaStream).
type carrierStream interface {
	webrtc.CarrierLeg
	Close() error
}

// mediaSink is the agent side of a held call: the agent's bridge on this instance, or the
// relay to the instance that holds the agent.
type mediaSink interface {
	Audio(ulaw []byte)
	DTMF(digit string)
	// Ended says the call is over, and why. It must not block.
	Ended(reason string)
	// Moved says the call's media went to another instance (this one is stopping, or was
	// taken for dead): the agent's side waits for it there. It must not block.
	Moved()
}

// Why a call ended, as sessions report it to the softphone ("ended" messages). Carrier states
// ("busy", "no-answer", "failed", "completed", "canceled") are reasons too.
const (
	reasonHangup      = "hangup"         // the far end hung up
	reasonAgentHangup = "agent-hangup"   // the agent hung up
	reasonMissed      = "missed"         // it rang out on this agent, who is now away
	reasonDeclined    = "declined"       // the agent declined it
	reasonNoAgent     = "no-agent"       // nobody took it within the queue timeout
	reasonGone        = "gone"           // it is no longer offered (answered elsewhere, ended)
	reasonCarrier     = "carrier-failed" // it could not be placed
	reasonMediaLost   = "media-lost"     // the media path between instances broke
	reasonAgentLost   = "agent-lost"     // the agent's session vanished and did not come back
)

// endAction is what ending a held call asks of the carrier.
type endAction int8

const (
	endStreamGone endAction = iota + 1 // nothing: the call already ended at the carrier
	endHangup                          // hang the call up
	endRelease                         // let the caller go politely (nobody could take the call)
)

type heldPhase int8

const (
	phaseWaiting  heldPhase = iota + 1 // queued, the caller hears the hold tone
	phaseRinging                       // ringing for one agent
	phaseAnswered                      // an agent has it
	phaseEnded
)

type streamRef struct {
	s        carrierStream
	outlived bool // the call outlives the stream (see outlivedStream)
}
type sinkRef struct{ s mediaSink }

// heldCall is a call whose carrier media stream this instance holds (or expects): it queues
// the call, rings agents one at a time, plays the hold tone while the caller waits, and joins
// the stream to the agent who answers. It is the carrier stream's media receiver.
type heldCall struct {
	hub           *Hub
	id            string
	inbound       bool
	from, to      string
	created       time.Time
	queueDeadline time.Time

	stream atomic.Pointer[streamRef]
	sink   atomic.Pointer[sinkRef]

	mu                               sync.Mutex
	phase                            heldPhase
	agent, agentInstance             string
	ringTimer, queueTimer, lostTimer *time.Timer
	streamTimer                      *time.Timer // a call between two streams
	tone                             *tonePlayer
}

func newHeldCall(h *Hub, o store.Offer) *heldCall {
	created := o.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	return &heldCall{
		hub: h, id: o.Call, inbound: o.Direction == call.Inbound, from: o.From, to: o.To,
		created: created, queueDeadline: created.Add(h.opts.QueueTimeout),
	}
}

// attachGrace is how long an answered call waits for its agent's media (the relay from
// another instance, or the agent's session after a reconnect) before it is hung up.
func (c *heldCall) attachGrace() time.Duration { return 2 * c.hub.opts.PresenceTTL }

func (c *heldCall) start(o store.Offer) {
	switch o.State {
	case store.OfferQueued:
		c.mu.Lock()
		c.phase = phaseWaiting
		if c.inbound {
			c.queueTimer = c.hub.after(time.Until(c.queueDeadline), c.queueTimedOut)
		}
		c.mu.Unlock()
		c.hub.poke()
	case store.OfferRinging:
		if c.inbound {
			c.mu.Lock()
			c.queueTimer = c.hub.after(time.Until(c.queueDeadline), c.queueTimedOut)
			c.mu.Unlock()
		}
		c.ringFor(o)
	case store.OfferAnswered:
		c.mu.Lock()
		c.phase, c.agent, c.agentInstance = phaseAnswered, o.Agent, o.AgentInstance
		c.lostTimer = c.hub.after(c.attachGrace(), c.lost)
		c.mu.Unlock()
	}
}

func (c *heldCall) isWaiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseWaiting
}

// offerNext reserves the next agent for a waiting call and rings it.
func (c *heldCall) offerNext(ctx context.Context) {
	if !c.isWaiting() {
		return
	}
	o, err := c.hub.st.Reserve(ctx, c.id, c.hub.opts.RingTimeout)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.end(reasonGone, endHangup)
	case err != nil:
		c.hub.log.Warn("agents: cannot offer a queued call", "call", c.id, "err", err)
	case o.State == store.OfferRinging:
		c.ringFor(o)
	case o.State == store.OfferEnded:
		c.end(reasonGone, endStreamGone)
	}
}

// ringFor rings the agent the offer was reserved for, and times the ring out.
func (c *heldCall) ringFor(o store.Offer) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		c.hub.background(opTimeout, func(ctx context.Context) {
			if _, err := c.hub.st.WithdrawOffer(ctx, c.id, o.Agent); err != nil {
				c.hub.log.Warn("agents: offer of an ended call not withdrawn", "call", c.id, "agent", o.Agent, "err", err)
			}
		})
		return
	}
	c.phase, c.agent, c.agentInstance = phaseRinging, o.Agent, o.AgentInstance
	if c.ringTimer != nil {
		c.ringTimer.Stop()
	}
	agent := o.Agent
	c.ringTimer = c.hub.after(c.hub.opts.RingTimeout, func() { c.ringOut(agent) })
	c.mu.Unlock()
	c.hub.send(o.AgentInstance, notice{Type: noticeRing, Call: c.id, Agent: agent, From: c.from, To: c.to,
		Holder: c.hub.opts.Instance, HolderURL: c.hub.opts.PublicURL})
}

// ringOut: the agent let the call ring out. Unless it answered at the last moment, the call
// goes back to the queue (or, past the queue timeout, the caller is let go) and the agent,
// who is evidently not at the desk, is set away by its session.
func (c *heldCall) ringOut(agent string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	st, err := c.hub.st.WithdrawOffer(ctx, c.id, agent)
	if err != nil {
		c.hub.log.Warn("agents: cannot withdraw a call that rang out", "call", c.id, "agent", agent, "err", err)
		st = store.OfferQueued // the reservation lapses by itself; move on
	}
	c.mu.Lock()
	if c.phase != phaseRinging || c.agent != agent {
		c.mu.Unlock()
		return
	}
	switch st {
	case store.OfferQueued:
		inst := c.agentInstance
		c.phase, c.agent, c.agentInstance = phaseWaiting, "", ""
		expired := c.inbound && !time.Now().Before(c.queueDeadline)
		c.mu.Unlock()
		c.hub.send(inst, notice{Type: noticeEnded, Call: c.id, Agent: agent, Reason: reasonMissed})
		if expired {
			c.end(reasonNoAgent, endRelease)
		} else {
			c.hub.poke()
		}
	case store.OfferAnswered:
		c.phase = phaseAnswered
		if c.sink.Load() == nil && c.lostTimer == nil {
			c.lostTimer = c.hub.after(c.attachGrace(), c.lost)
		}
		c.mu.Unlock()
	default:
		c.mu.Unlock()
		c.end(reasonGone, endStreamGone)
	}
}

// declined: the agent declined (its session already withdrew the offer in Redis).
func (c *heldCall) declined(agent string) {
	c.mu.Lock()
	if c.phase != phaseRinging || c.agent != agent {
		c.mu.Unlock()
		return
	}
	c.ringTimer.Stop()
	c.phase, c.agent, c.agentInstance = phaseWaiting, "", ""
	expired := c.inbound && !time.Now().Before(c.queueDeadline)
	c.mu.Unlock()
	if expired {
		c.end(reasonNoAgent, endRelease)
		return
	}
	c.hub.poke()
}

func (c *heldCall) queueTimedOut() {
	// A call ringing for an agent rings out first; ringOut then sees the deadline has passed.
	if c.isWaiting() {
		c.end(reasonNoAgent, endRelease)
	}
}

// lost: the agent that has the call never attached its media, or lost it and did not come
// back in time.
func (c *heldCall) lost() {
	c.mu.Lock()
	gone := c.phase == phaseAnswered && c.sink.Load() == nil
	c.mu.Unlock()
	if gone {
		c.end(reasonAgentLost, endHangup)
	}
}

var errNotYours = errors.New("agents: the call is not answered by this agent")

// answered records that agent took the call (its AnswerOffer succeeded in Redis).
func (c *heldCall) answered(agent string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.agent != agent:
		return errNotYours
	case c.phase == phaseRinging:
		c.ringTimer.Stop()
		c.phase = phaseAnswered
	case c.phase != phaseAnswered:
		return errNotYours
	}
	return nil
}

// attach joins the agent's side to the call: carrier audio goes to sink from now on, and the
// hold tone stops.
func (c *heldCall) attach(agent string, sink mediaSink) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != phaseAnswered || c.agent != agent {
		return errNotYours
	}
	c.sink.Store(&sinkRef{sink})
	c.stopToneLocked()
	if c.lostTimer != nil {
		c.lostTimer.Stop()
		c.lostTimer = nil
	}
	return nil
}

// detach removes sink if it is still attached: the agent's session moved or went away. The
// caller hears the hold tone until the agent comes back, or the call is hung up.
func (c *heldCall) detach(sink mediaSink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.sink.Load(); cur == nil || cur.s != sink {
		return
	}
	c.sink.Store(nil)
	if c.phase == phaseAnswered {
		if c.inbound {
			c.startToneLocked()
		}
		c.lostTimer = c.hub.after(c.attachGrace(), c.lost)
	}
}

// outlivedStream is a carrier stream whose end does not by itself end the call: a Telnyx call
// stays up without media until a new stream or a hang-up, and a Twilio call waits in the
// <Pause> after </Connect> for a re-point (webhooks.MediaStream says so for both).
type outlivedStream interface{ CallOutlivesStream() bool }

// streamStarted takes the call's carrier media stream.
func (c *heldCall) streamStarted(s carrierStream) (MediaReceiver, error) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return nil, errCallOver
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
	unattached := c.sink.Load() == nil
	if c.inbound && unattached {
		c.startToneLocked()
	}
	summon := c.phase == phaseAnswered && unattached
	agent := c.agent
	c.mu.Unlock()
	if summon {
		// The agent's session attaches when it hears the media is here.
		c.hub.background(opTimeout, func(ctx context.Context) {
			p, err := c.hub.st.Presence(ctx, agent)
			if err == nil && p.Instance != "" {
				c.hub.send(p.Instance, notice{Type: noticeAttach, Call: c.id, Agent: agent,
					Holder: c.hub.opts.Instance, HolderURL: c.hub.opts.PublicURL})
			}
		})
	}
	return &streamReceiver{c: c, ref: ref}, nil
}

// streamReceiver takes one carrier stream's frames for its call; a call may have several
// streams one after another (re-pointed, or its stream started again).
type streamReceiver struct {
	c   *heldCall
	ref *streamRef
}

func (r *streamReceiver) Audio(ulaw []byte) { r.c.Audio(ulaw) }
func (r *streamReceiver) DTMF(digit string) { r.c.DTMF(digit) }
func (r *streamReceiver) Stopped()          { r.c.stopped(r.ref) }

// sendAudio sends the agent's audio to the carrier; before the stream exists it is dropped.
func (c *heldCall) sendAudio(ulaw []byte) error {
	if r := c.stream.Load(); r != nil {
		return r.s.SendAudio(ulaw)
	}
	return nil
}

// Audio forwards a carrier frame to the agent's side, if one is attached.
func (c *heldCall) Audio(ulaw []byte) {
	if r := c.sink.Load(); r != nil {
		r.s.Audio(ulaw)
	}
}

// DTMF forwards a digit the caller pressed.
func (c *heldCall) DTMF(digit string) {
	if r := c.sink.Load(); r != nil {
		r.s.DTMF(digit)
	}
}

// stopped: the carrier's stream ref ended. For a call re-anchored on another instance (this
// one is stopping, or was taken for dead) that is the carrier moving the stream there: the
// call lets go here, quietly. A call that outlives its stream ends with its record (the
// call-ended wake-up, callChanged), and if it is still live a while later its stream is asked
// for again. Any other stream's end is the end of the call.
func (c *heldCall) stopped(ref *streamRef) {
	if r := c.stream.Load(); r != ref {
		return // an earlier stream, already replaced
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o, err := c.hub.st.Offer(ctx, c.id)
	live := err == nil && o.State != store.OfferEnded
	switch {
	case live && o.Holder != "" && o.Holder != c.hub.opts.Instance:
		c.moved()
	case live && ref.outlived:
		c.streamLost(ref)
	default:
		c.end(reasonHangup, endStreamGone)
	}
}

// streamGrace is how long a call whose stream stopped waits for its record to end (or for a
// new stream) before its stream is asked for again.
const streamGrace = 3 * time.Second

// streamLost: a call's stream stopped but the call lives on.
func (c *heldCall) streamLost(ref *streamRef) {
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
	c.streamTimer = c.hub.after(streamGrace, c.restream)
}

// restream asks the carrier to stream a call that lost its stream to this instance again.
func (c *heldCall) restream() {
	c.mu.Lock()
	waiting := c.phase != phaseEnded && c.stream.Load() == nil
	c.mu.Unlock()
	if !waiting {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := c.hub.opts.Carriers.Repoint(ctx, c.id, c.hub.opts.PublicURL); err != nil {
		c.hub.log.Warn("agents: a call that lost its stream could not get it back", "call", c.id, "err", err)
		c.end(reasonMediaLost, endStreamGone)
	}
}

// moved: the call's media now goes to another instance. It ends here without ending the call:
// no offer change, no carrier action; the agent's side is told to follow it.
func (c *heldCall) moved() {
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
	c.mu.Unlock()
	c.hub.forget(c)
	c.hub.log.Info("agents: call's media moved to another instance", "call", c.id)
	if sink != nil {
		sink.s.Moved()
	}
	if stream != nil {
		_ = stream.s.Close() // the carrier has moved on from it; closing ours changes nothing
	}
}

// hasStream reports whether a carrier stream is connected for the call here.
func (c *heldCall) hasStream() bool { return c.stream.Load() != nil }

// end finishes the call for the agents, once: the offer is ended in Redis, the agent is told,
// the carrier is asked to act, and the stream is closed.
func (c *heldCall) end(reason string, action endAction) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return
	}
	prev, agent, inst := c.phase, c.agent, c.agentInstance
	c.phase = phaseEnded
	c.stopTimersLocked()
	c.stopToneLocked()
	stream := c.stream.Load()
	sink := c.sink.Swap(nil)
	c.mu.Unlock()
	c.hub.forget(c)
	c.hub.background(opTimeout, func(ctx context.Context) {
		if _, err := c.hub.st.EndOffer(ctx, c.id); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.hub.log.Warn("agents: offer not ended", "call", c.id, "err", err)
		}
		if sink != nil {
			sink.s.Ended(reason)
		}
		if agent != "" && (prev == phaseRinging || prev == phaseAnswered && sink == nil) {
			// The agent may have moved since the call was routed (its instance died, or it
			// reconnected elsewhere): tell the instance holding it now.
			if p, err := c.hub.st.Presence(ctx, agent); err == nil && p.Instance != "" {
				inst = p.Instance
			}
			c.hub.send(inst, notice{Type: noticeEnded, Call: c.id, Agent: agent, Reason: reason})
		}
		var err error
		switch action {
		case endHangup:
			err = c.hub.opts.Carriers.Hangup(ctx, c.id)
		case endRelease:
			err = c.hub.opts.Carriers.Release(ctx, c.id)
		}
		if err != nil {
			c.hub.log.Warn("agents: carrier did not end the call", "call", c.id, "reason", reason, "err", err)
		}
		if stream != nil {
			_ = stream.s.Close() // the call is over; a stream that closes badly is closed all the same
		}
	})
}

// shutdown stops the call's timers and tone when the hub stops; the carrier stream closes
// with the webhooks server.
func (c *heldCall) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = phaseEnded
	c.stopTimersLocked()
	c.stopToneLocked()
}

func (c *heldCall) stopTimersLocked() {
	for _, t := range []*time.Timer{c.ringTimer, c.queueTimer, c.lostTimer, c.streamTimer} {
		if t != nil {
			t.Stop()
		}
	}
}

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
