package agents

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/media"
)

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

	stream    atomic.Pointer[streamRef]
	sink      atomic.Pointer[sinkRef]
	recording atomic.Pointer[callRecording] // while this instance records the call
	// room is set while the call has more than one agent side (room.go); nil, the call is a
	// plain relay between the stream and sink. Set under mu.
	room atomic.Pointer[room]

	mu                               sync.Mutex
	phase                            heldPhase
	agent, agentInstance             string
	ringTimer, queueTimer, lostTimer *time.Timer
	streamTimer                      *time.Timer // a call between two streams
	tone                             *tonePlayer
	// transferFrom is the agent who transferred the call, while its target rings: the call
	// rings it again if the target does not take it (transfer.go).
	transferFrom string
	// A warm transfer's consult (consult.go): the agent consulted, on consultInstance, its
	// side once it answers, the timer of its ring, and whether the consult became a
	// conference.
	consult, consultInstance string
	consultSink              mediaSink
	consultTimer             *time.Timer
	conference               bool
}

func newHeldCall(h *Hub, o agentdb.Offer) *heldCall {
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

func (c *heldCall) start(o agentdb.Offer) {
	switch o.State {
	case agentdb.OfferQueued:
		c.mu.Lock()
		c.phase = phaseWaiting
		if c.inbound {
			c.queueTimer = c.hub.after(time.Until(c.queueDeadline), c.queueTimedOut)
		}
		c.mu.Unlock()
		c.hub.poke()
	case agentdb.OfferRinging:
		if c.inbound {
			c.mu.Lock()
			c.queueTimer = c.hub.after(time.Until(c.queueDeadline), c.queueTimedOut)
			c.mu.Unlock()
		}
		c.ringFor(o)
	case agentdb.OfferAnswered:
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
	case o.State == agentdb.OfferRinging:
		c.ringFor(o)
	case o.State == agentdb.OfferEnded:
		c.end(reasonGone, endStreamGone)
	}
}

// ringFor rings the agent the offer was reserved for, and times the ring out.
func (c *heldCall) ringFor(o agentdb.Offer) {
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
		st = agentdb.OfferQueued // the reservation lapses by itself; move on
	}
	c.mu.Lock()
	if c.phase != phaseRinging || c.agent != agent {
		c.mu.Unlock()
		return
	}
	switch st {
	case agentdb.OfferQueued:
		inst, back := c.agentInstance, c.transferFrom
		c.phase, c.agent, c.agentInstance, c.transferFrom = phaseWaiting, "", "", ""
		expired := c.inbound && !time.Now().Before(c.queueDeadline)
		c.mu.Unlock()
		c.hub.send(inst, notice{Type: noticeEnded, Call: c.id, Agent: agent, Reason: reasonMissed})
		if back != "" && c.ringBack(back) {
			return
		}
		if expired {
			c.end(reasonNoAgent, endRelease)
		} else {
			c.hub.poke()
		}
	case agentdb.OfferAnswered:
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
	back := c.transferFrom
	c.phase, c.agent, c.agentInstance, c.transferFrom = phaseWaiting, "", "", ""
	expired := c.inbound && !time.Now().Before(c.queueDeadline)
	c.mu.Unlock()
	if back != "" && c.ringBack(back) {
		return
	}
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
	agent := c.agent
	c.mu.Unlock()
	if !gone {
		return
	}
	// The agent may have transferred the call and the notice been lost: its offer says so.
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	o, err := c.hub.st.Offer(ctx, c.id)
	switch {
	case err == nil && o.State == agentdb.OfferRinging && o.Agent != agent:
		c.transferred(agent, o)
		return
	case err == nil && o.NumberLeg != "" && o.TransferredBy == agent:
		c.numberTransferred(agent, o.Number, o.NumberLeg) // transferred to a number
		return
	}
	c.end(reasonAgentLost, endHangup)
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
		c.phase, c.transferFrom = phaseAnswered, ""
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
	if r := c.room.Load(); r != nil {
		r.add(sink, media.RoleTalk)
		c.retargetWhispersLocked() // a supervisor whispering to the agent follows it
		if r.callerRole() == media.RoleHeld {
			sink = nil // the caller is on hold while the agents consult: the tone plays on
		}
	}
	if sink != nil {
		c.stopToneLocked()
	}
	if c.lostTimer != nil {
		c.lostTimer.Stop()
		c.lostTimer = nil
	}
	c.connectedForRecording()
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
	if r := c.room.Load(); r != nil {
		r.remove(sink)
		c.settleRoomLocked()
	}
	if c.phase == phaseAnswered {
		if c.inbound {
			c.startToneLocked()
		}
		c.lostTimer = c.hub.after(c.attachGrace(), c.lost)
	}
}

// end finishes the call for the agents, once: the offer is ended in Redis, the agent is told,
// the carrier is asked to act, and the stream is closed.
func (c *heldCall) end(reason string, action endAction) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return
	}
	prev, agent, inst := c.phase, c.agent, c.agentInstance
	consultRinging, consultInst := "", c.consultInstance
	if c.consultSink == nil {
		consultRinging = c.consult
	}
	c.phase = phaseEnded
	c.stopTimersLocked()
	c.stopToneLocked()
	stream := c.stream.Load()
	sink := c.sink.Swap(nil)
	others := c.closeRoomLocked(sink)
	c.mu.Unlock()
	c.hub.forget(c)
	c.hub.background(opTimeout, func(ctx context.Context) {
		c.stopRecording(ctx, store.RecordingDone)
		if _, err := c.hub.st.EndOffer(ctx, c.id); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.hub.log.Warn("agents: offer not ended", "call", c.id, "err", err)
		}
		if sink != nil {
			sink.s.Ended(reason)
		}
		for _, o := range others {
			o.Ended(reason)
		}
		if consultRinging != "" {
			c.hub.send(consultInst, notice{Type: noticeEnded, Call: c.id, Agent: consultRinging, Reason: reasonGone})
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
	c.phase = phaseEnded
	c.stopTimersLocked()
	c.stopToneLocked()
	c.closeRoomLocked(nil)
	c.mu.Unlock()
	// The call lives on at its carrier, and another instance may take it over: its
	// recording goes on there.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.stopRecording(ctx, store.RecordingMoved)
}

func (c *heldCall) stopTimersLocked() {
	for _, t := range []*time.Timer{c.ringTimer, c.queueTimer, c.lostTimer, c.streamTimer, c.consultTimer} {
		if t != nil {
			t.Stop()
		}
	}
}
