package held

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

type heldPhase int8

const (
	phaseWaiting  heldPhase = iota + 1 // queued, the caller hears the hold tone
	phaseRinging                       // ringing for one agent
	phaseAnswered                      // an agent has it
	phaseEnded
)

type streamRef struct {
	s        Stream
	outlived bool // the call outlives the stream (see outlivedStream)
}
type sinkRef struct{ s Sink }

// Call is a call whose carrier media stream this instance holds (or expects): it queues
// the call, rings agents one at a time, plays the hold tone while the caller waits, and joins
// the stream to the agent who answers. It is the carrier stream's media receiver.
type Call struct {
	host          Host
	opts          *Options
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
	consultSink              Sink
	consultTimer             *time.Timer
	conference               bool
}

// New returns the held call of offer o, hosted by host with opts; Start starts it. The host
// registers it (under its own lock) before starting it, and forgets it when it ends.
func New(host Host, opts *Options, o agentdb.Offer) *Call {
	created := o.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	return &Call{
		host: host, opts: opts, id: o.Call, inbound: o.Direction == call.Inbound, from: o.From, to: o.To,
		created: created, queueDeadline: created.Add(opts.QueueTimeout),
	}
}

// ID is the call's id.
func (c *Call) ID() string { return c.id }

// Created is when the call was first offered: the queue's order.
func (c *Call) Created() time.Time { return c.created }

// attachGrace is how long an answered call waits for its agent's media (the relay from
// another instance, or the agent's session after a reconnect) before it is hung up.
func (c *Call) attachGrace() time.Duration { return 2 * c.opts.PresenceTTL }

// Start starts the call in the state of its offer o: queued (it waits for an agent), ringing
// (it rings the offer's agent) or answered (it waits for its agent's media).
func (c *Call) Start(o agentdb.Offer) {
	switch o.State {
	case agentdb.OfferQueued:
		c.mu.Lock()
		c.phase = phaseWaiting
		if c.inbound {
			c.queueTimer = c.host.After(time.Until(c.queueDeadline), c.queueTimedOut)
		}
		c.mu.Unlock()
		c.host.Poke()
	case agentdb.OfferRinging:
		if c.inbound {
			c.mu.Lock()
			c.queueTimer = c.host.After(time.Until(c.queueDeadline), c.queueTimedOut)
			c.mu.Unlock()
		}
		c.ringFor(o)
	case agentdb.OfferAnswered:
		if o.NumberLeg != "" && o.Agent == "" {
			c.resumeNumber(o) // it was bridging to a number on an instance that died or stopped
			return
		}
		c.mu.Lock()
		c.phase, c.agent, c.agentInstance = phaseAnswered, o.Agent, o.AgentInstance
		c.lostTimer = c.host.After(c.attachGrace(), c.lost)
		c.mu.Unlock()
	}
}

// IsWaiting reports whether the call is queued, waiting for an agent.
func (c *Call) IsWaiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseWaiting
}

// OfferNext reserves the next agent for a waiting call and rings it.
func (c *Call) OfferNext(ctx context.Context) {
	if !c.IsWaiting() {
		return
	}
	o, err := c.opts.Store.Reserve(ctx, c.id, c.opts.RingTimeout)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.End(ReasonGone, EndHangup)
	case err != nil:
		c.opts.Log.Warn("agents: cannot offer a queued call", "call", c.id, "err", err)
	case o.State == agentdb.OfferRinging:
		c.ringFor(o)
	case o.State == agentdb.OfferEnded:
		c.End(ReasonGone, EndStreamGone)
	}
}

// ringFor rings the agent the offer was reserved for, and times the ring out.
func (c *Call) ringFor(o agentdb.Offer) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		c.host.Background(OpTimeout, func(ctx context.Context) {
			if _, err := c.opts.Store.WithdrawOffer(ctx, c.id, o.Agent); err != nil {
				c.opts.Log.Warn("agents: offer of an ended call not withdrawn", "call", c.id, "agent", o.Agent, "err", err)
			}
		})
		return
	}
	c.phase, c.agent, c.agentInstance = phaseRinging, o.Agent, o.AgentInstance
	if c.ringTimer != nil {
		c.ringTimer.Stop()
	}
	agent := o.Agent
	c.ringTimer = c.host.After(c.opts.RingTimeout, func() { c.ringOut(agent) })
	c.mu.Unlock()
	c.host.Send(o.AgentInstance, Notice{Type: NoticeRing, Call: c.id, Agent: agent, From: c.from, To: c.to,
		Holder: c.opts.Instance, HolderURL: c.opts.PublicURL})
}

// ringOut: the agent let the call ring out. Unless it answered at the last moment, the call
// goes back to the queue (or, past the queue timeout, the caller is let go) and the agent,
// who is evidently not at the desk, is set away by its session.
func (c *Call) ringOut(agent string) {
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	st, err := c.opts.Store.WithdrawOffer(ctx, c.id, agent)
	if err != nil {
		c.opts.Log.Warn("agents: cannot withdraw a call that rang out", "call", c.id, "agent", agent, "err", err)
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
		c.host.Send(inst, Notice{Type: NoticeEnded, Call: c.id, Agent: agent, Reason: ReasonMissed})
		if back != "" && c.ringBack(back) {
			return
		}
		if expired {
			c.End(ReasonNoAgent, EndRelease)
		} else {
			c.host.Poke()
		}
	case agentdb.OfferAnswered:
		c.phase = phaseAnswered
		if c.sink.Load() == nil && c.lostTimer == nil {
			c.lostTimer = c.host.After(c.attachGrace(), c.lost)
		}
		c.mu.Unlock()
	default:
		c.mu.Unlock()
		c.End(ReasonGone, EndStreamGone)
	}
}

// Declined: the agent declined (its session already withdrew the offer in Redis).
func (c *Call) Declined(agent string) {
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
		c.End(ReasonNoAgent, EndRelease)
		return
	}
	c.host.Poke()
}

func (c *Call) queueTimedOut() {
	// A call ringing for an agent rings out first; ringOut then sees the deadline has passed.
	if c.IsWaiting() {
		c.End(ReasonNoAgent, EndRelease)
	}
}

// lost: the agent that has the call never attached its media, or lost it and did not come
// back in time.
func (c *Call) lost() {
	c.mu.Lock()
	gone := c.phase == phaseAnswered && c.sink.Load() == nil
	agent := c.agent
	c.mu.Unlock()
	if !gone {
		return
	}
	// The agent may have transferred the call and the notice been lost: its offer says so.
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	o, err := c.opts.Store.Offer(ctx, c.id)
	switch {
	case err == nil && o.State == agentdb.OfferRinging && o.Agent != agent:
		c.Transferred(agent, o)
		return
	case err == nil && o.NumberLeg != "" && o.TransferredBy == agent:
		c.NumberTransferred(agent, o.Number, o.NumberLeg) // transferred to a number
		return
	}
	c.End(ReasonAgentLost, EndHangup)
}

// answered records that agent took the call (its AnswerOffer succeeded in Redis).
func (c *Call) answered(agent string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.agent != agent:
		return ErrNotYours
	case c.phase == phaseRinging:
		c.ringTimer.Stop()
		c.phase, c.transferFrom = phaseAnswered, ""
	case c.phase != phaseAnswered:
		return ErrNotYours
	}
	return nil
}

// attach joins the agent's side to the call: carrier audio goes to sink from now on, and the
// hold tone stops.
func (c *Call) attach(agent string, sink Sink) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != phaseAnswered || c.agent != agent {
		return ErrNotYours
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
func (c *Call) detach(sink Sink) {
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
		c.lostTimer = c.host.After(c.attachGrace(), c.lost)
	}
}

// End finishes the call for the agents, once: the offer is ended in Redis, the agent is told,
// the carrier is asked to act, and the stream is closed.
func (c *Call) End(reason string, action EndAction) {
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
	c.host.Forget(c)
	c.host.Background(OpTimeout, func(ctx context.Context) {
		c.stopRecording(ctx, store.RecordingDone)
		if _, err := c.opts.Store.EndOffer(ctx, c.id); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.opts.Log.Warn("agents: offer not ended", "call", c.id, "err", err)
		}
		if sink != nil {
			sink.s.Ended(reason)
		}
		for _, o := range others {
			o.Ended(reason)
		}
		if consultRinging != "" {
			c.host.Send(consultInst, Notice{Type: NoticeEnded, Call: c.id, Agent: consultRinging, Reason: ReasonGone})
		}
		if agent != "" && (prev == phaseRinging || prev == phaseAnswered && sink == nil) {
			// The agent may have moved since the call was routed (its instance died, or it
			// reconnected elsewhere): tell the instance holding it now.
			if p, err := c.opts.Store.Presence(ctx, agent); err == nil && p.Instance != "" {
				inst = p.Instance
			}
			c.host.Send(inst, Notice{Type: NoticeEnded, Call: c.id, Agent: agent, Reason: reason})
		}
		var err error
		switch action {
		case EndHangup:
			err = c.opts.Carriers.Hangup(ctx, c.id)
		case EndRelease:
			err = c.opts.Carriers.Release(ctx, c.id)
		}
		if err != nil {
			c.opts.Log.Warn("agents: carrier did not end the call", "call", c.id, "reason", reason, "err", err)
		}
		if stream != nil {
			_ = stream.s.Close() // the call is over; a stream that closes badly is closed all the same
		}
	})
}

// Shutdown stops the call's timers and tone when the host stops; the carrier stream closes
// with the webhooks server.
func (c *Call) Shutdown() {
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

func (c *Call) stopTimersLocked() {
	for _, t := range []*time.Timer{c.ringTimer, c.queueTimer, c.lostTimer, c.streamTimer, c.consultTimer} {
		if t != nil {
			t.Stop()
		}
	}
}
