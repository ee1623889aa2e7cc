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
)

// Blind transfer to a phone number: the call's agent hands the caller to an E.164 number.
// The instance holding the caller's stream places an outbound leg to the number through the
// carrier side (the same placer as the agents' calls, with its failover), its media stream
// pointed back at itself. The transferring agent is released at once and wraps up; the caller
// hears the hold tone while the number rings. When the far end answers, its stream arrives
// here and the two carrier legs are bridged: the leg is the call's agent side (a Sink),
// so frames pass both ways untouched, as between a caller and an agent, with nothing decoded.
// Either leg hanging up ends the other. A leg that does not connect (busy, no answer within
// the queue timeout, failed, refused by every carrier) gives the caller back to the
// transferring agent, rung again, or to the queue if that agent cannot take it, as a transfer
// to an agent does.
//
// The bridge lives on the caller's holder. If that instance dies or stops, the survivor that
// claims the caller's call takes the leg's offer with it (agentdb.ClaimOrphans) and holds the
// call again as a bridge to its number (resumeNumber): a leg that had answered is re-pointed
// too and the two new streams are bridged as before; a leg still ringing keeps its no-answer
// timeout from the transfer's start, and its answer (its stream, pointed where its offer
// says) or its end (CarrierEnded) reach the survivor. The old holder lets go of both legs
// quietly (Moved, and a leg stream stopping because its offer moved).

// phaseNumber: the call's agent side is an outbound leg to a number, ringing or bridged.
const phaseNumber = phaseEnded + 1

// Leg is the outbound leg of a blind transfer to a number, as the caller's held call
// sees it: its agent side while the number rings and once it answers.
type Leg struct {
	c              *Call
	id, number, by string
	stream         atomic.Pointer[streamRef] // the far end's stream, once it answered

	mu          sync.Mutex
	done        bool
	moved       bool // let go because the bridge went to another instance: the call lives on
	answerTimer *time.Timer
	// answered: the far end had answered before the bridge came here from an instance that
	// died or stopped; its stream comes back when the leg is re-pointed.
	answered bool
}

// Audio sends the caller's frame to the far end, once it answered.
func (l *Leg) Audio(ulaw []byte) {
	if r := l.stream.Load(); r != nil {
		_ = r.s.SendAudio(ulaw) // a stream that cannot take audio has ended, and says so through Stopped
	}
}

// DTMF: a carrier media stream cannot send digits into its call; the caller's digits are
// dropped at the bridge.
func (l *Leg) DTMF(string) {}

// Ended: the caller's call is over; the leg is hung up.
func (l *Leg) Ended(string) { l.finish(true) }

// Moved: the caller's call went to another instance, and the leg with it (the claim moves
// both offers): the leg lets go here without ending or hanging up anything. Its stream, if
// any, stops when the carrier re-points it.
func (l *Leg) Moved() {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done, l.moved = true, true
	if l.answerTimer != nil {
		l.answerTimer.Stop()
	}
	l.mu.Unlock()
	l.c.host.UntrackLeg(l)
}

// RepointRefused: the carrier would not re-point the answered leg to this instance (it ended
// meanwhile): as when its far end hangs up, the caller's call ends too.
func (l *Leg) RepointRefused() {
	if l.finish(false) {
		l.c.End(ReasonHangup, EndHangup)
	}
}

// isMoved reports whether the leg let go because the bridge moved.
func (l *Leg) isMoved() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.moved
}

// ringing reports whether the leg waits for its far end to answer (the caller hears the hold
// tone meanwhile).
func (l *Leg) ringing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.done && !l.answered && l.stream.Load() == nil
}

// finish ends the leg once: its offer ends, its stream closes, and (hangup) the carrier hangs
// it up. It reports whether this call did it.
func (l *Leg) finish(hangup bool) bool { return l.finishIf(hangup, false) }

// finishIf is finish; with unanswered, only for a leg whose far end has not answered (checked
// under the lock a stream's arrival takes).
func (l *Leg) finishIf(hangup, unanswered bool) bool {
	l.mu.Lock()
	if l.done || unanswered && l.stream.Load() != nil {
		l.mu.Unlock()
		return false
	}
	l.done = true
	if l.answerTimer != nil {
		l.answerTimer.Stop()
	}
	l.mu.Unlock()
	c := l.c
	c.host.UntrackLeg(l)
	c.host.Background(OpTimeout, func(ctx context.Context) {
		EndLegOffer(ctx, c.opts, l.id)
		if hangup {
			if err := c.opts.Carriers.Hangup(ctx, l.id); err != nil {
				c.opts.Log.Warn("agents: number leg not hung up", "leg", l.id, "call", l.c.id, "err", err)
			}
		}
		if r := l.stream.Load(); r != nil {
			_ = r.s.Close() // the leg is over; a stream that closes badly is closed all the same
		}
	})
	return true
}

// place has the carrier side call the number, the leg's stream pointed here, and bounds how
// long it may ring (the queue timeout).
func (l *Leg) place() {
	c := l.c
	l.mu.Lock()
	if !l.done {
		l.answerTimer = c.host.After(c.opts.QueueTimeout, func() { l.failed("no-answer") })
	}
	l.mu.Unlock()
	c.host.Background(2*OpTimeout, func(ctx context.Context) {
		err := c.opts.Carriers.Place(ctx, Placement{CallID: l.id, To: l.number, MediaURL: c.opts.PublicURL})
		if err != nil {
			c.opts.Log.Info("agents: number leg not placed", "call", l.c.id, "leg", l.id, "err", err)
			l.failed(ReasonCarrier)
			return
		}
		if _, err := c.opts.Store.Apply(ctx, call.Event{ID: l.id + ":transfer-of:" + l.c.id, CallID: l.id,
			Detail: "blind transfer of call " + l.c.id + " by agent " + l.by, Source: call.SourceSwitchboard}); err != nil {
			c.opts.Log.Warn("agents: number leg's origin not recorded", "leg", l.id, "err", err)
		}
	})
}

// failed: the leg did not connect (reason: a carrier state, or carrier-failed); the caller
// goes back to the transferring agent, or the queue.
func (l *Leg) failed(reason string) {
	if !l.finishIf(true, true) {
		return // over already, or answered: its end is then the far end hanging up (Stopped)
	}
	l.c.numberFailed(l, reason)
}

// StreamStarted: the far end answered and its stream arrived; the legs are bridged.
func (l *Leg) StreamStarted(s Stream) (MediaReceiver, error) {
	l.mu.Lock()
	if l.done || l.stream.Load() != nil {
		l.mu.Unlock()
		return nil, ErrCallOver
	}
	ref := &streamRef{s: s}
	l.stream.Store(ref)
	if l.answerTimer != nil {
		l.answerTimer.Stop()
	}
	l.mu.Unlock()
	if !l.c.numberAnswered(l) {
		l.finish(true)
		return nil, ErrCallOver
	}
	return &legReceiver{l: l, ref: ref}, nil
}

// legReceiver takes the far end's frames to the caller.
type legReceiver struct {
	l   *Leg
	ref *streamRef
}

func (r *legReceiver) Audio(ulaw []byte) {
	_ = r.l.c.AudioFrom(r.l, ulaw) // a caller's stream that cannot take audio has ended and ends the call
}

// DTMF: the far end's digits are not passed on (a carrier stream cannot send them).
func (r *legReceiver) DTMF(string) {}

// Stopped: the far end hung up; the caller's call ends too. A leg whose bridge went to
// another instance (its offer names another holder) lets go quietly instead: its stream
// stopped because the carrier re-pointed it.
func (r *legReceiver) Stopped() {
	l := r.l
	if l.stream.Load() != r.ref || l.isMoved() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if o, err := l.c.opts.Store.Offer(ctx, l.id); err == nil && o.State != agentdb.OfferEnded &&
		o.Holder != "" && o.Holder != l.c.opts.Instance {
		l.Moved()
		return
	}
	if l.finish(false) {
		l.c.End(ReasonHangup, EndHangup)
	}
}

// CarrierEnded: the carrier says the leg ended (st terminal) before or after it answered.
func (l *Leg) CarrierEnded(st call.State) {
	if l.stream.Load() == nil {
		l.failed(st.String())
		return
	}
	l.finish(false)
	l.c.End(ReasonHangup, EndHangup)
}

// NumberTransferred: the call's agent from handed it to number, on leg legID. from's side
// lets go, the caller hears the hold tone while the number rings, and the leg is placed.
func (c *Call) NumberTransferred(from, number, legID string) {
	l := &Leg{c: c, id: legID, number: number, by: from}
	c.mu.Lock()
	if c.phase != phaseAnswered || c.agent != from {
		c.mu.Unlock()
		c.host.Background(OpTimeout, func(ctx context.Context) { EndLegOffer(ctx, c.opts, legID) })
		return
	}
	old := c.sink.Swap(&sinkRef{l})
	others := c.closeRoomLocked(old)
	if c.lostTimer != nil {
		c.lostTimer.Stop()
		c.lostTimer = nil
	}
	c.transferFrom = from
	c.phase, c.agent, c.agentInstance = phaseNumber, "", ""
	c.startToneLocked()
	c.mu.Unlock()
	endTransferred(old, others)
	c.host.TrackLeg(l)
	l.place()
}

// numberAnswered: leg l's far end answered (or its stream came back after a move); the hold
// tone stops and the legs are bridged. false if the call no longer waits for l.
func (c *Call) numberAnswered(l *Leg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.sink.Load(); c.phase != phaseNumber || cur == nil || cur.s != l {
		return false
	}
	c.stopToneLocked()
	c.connectedForRecording()
	c.opts.Log.Info("agents: call bridged to a number", "call", c.id, "leg", l.id, "again", l.answered)
	if !l.answered {
		// Said in Redis so that an instance claiming the call re-points the leg too.
		c.host.Background(OpTimeout, func(ctx context.Context) {
			if err := c.opts.Store.NumberLegAnswered(ctx, c.id, l.id); err != nil && !errors.Is(err, agentdb.ErrOfferGone) {
				c.opts.Log.Warn("agents: answer of a number leg not stored", "call", c.id, "leg", l.id, "err", err)
			}
		})
	}
	return true
}

// resumeNumber holds again a call whose holder died or stopped while it was bridging to a
// number (its offer o names the leg): the leg becomes its agent side again, not placed anew.
// A leg that had answered is re-pointed here by the claimer (the hub's reanchor) and bridged
// when its stream arrives; one still ringing keeps its no-answer timeout from the transfer's
// start, and the caller hears the hold tone once its stream is back.
func (c *Call) resumeNumber(o agentdb.Offer) {
	l := &Leg{c: c, id: o.NumberLeg, number: o.Number, by: o.TransferredBy, answered: o.NumberAnswered}
	c.mu.Lock()
	c.phase, c.agent, c.agentInstance, c.transferFrom = phaseNumber, "", "", o.TransferredBy
	c.sink.Store(&sinkRef{l})
	c.mu.Unlock()
	c.host.TrackLeg(l)
	if l.answered {
		return
	}
	left := c.opts.QueueTimeout
	if !o.NumberAt.IsZero() {
		left -= time.Since(o.NumberAt)
	}
	l.mu.Lock()
	l.answerTimer = c.host.After(max(left, 0), func() { l.failed("no-answer") })
	l.mu.Unlock()
	// Its end may have come while no instance held it (the carrier's word reached no leg):
	// its record says so.
	c.host.Background(OpTimeout, func(ctx context.Context) {
		if rec, err := c.opts.Store.Call(ctx, l.id); err == nil && rec.State.Terminal() {
			l.CarrierEnded(rec.State)
		}
	})
}

// numberFailed: leg l did not connect. The caller, still hearing the hold tone, goes back to
// the agent who transferred it, rung again, or to the queue, for up to the queue timeout
// from now.
func (c *Call) numberFailed(l *Leg, reason string) {
	c.mu.Lock()
	if cur := c.sink.Load(); c.phase != phaseNumber || cur == nil || cur.s != l {
		c.mu.Unlock()
		return
	}
	c.sink.Store(nil)
	back := c.transferFrom
	c.phase, c.transferFrom = phaseWaiting, ""
	c.queueDeadline = time.Now().Add(c.opts.QueueTimeout)
	if c.queueTimer != nil {
		c.queueTimer.Stop()
	}
	c.queueTimer = c.host.After(c.opts.QueueTimeout, c.queueTimedOut)
	c.mu.Unlock()
	c.opts.Log.Info("agents: a number did not take a transferred call; it goes back", "call", c.id, "leg", l.id, "reason", reason, "to", back)
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	if _, err := c.opts.Store.Apply(ctx, call.Event{ID: c.id + ":transfer:" + l.id + ":failed", CallID: c.id,
		Detail: "transfer to " + l.number + " did not connect (" + reason + "); back to agent " + back, Source: call.SourceSwitchboard}); err != nil {
		c.opts.Log.Warn("agents: failed transfer not recorded", "call", c.id, "err", err)
	}
	if err := c.opts.Store.NumberLegFailed(ctx, c.id, l.id); err != nil {
		c.opts.Log.Warn("agents: a call back from its number could not be queued", "call", c.id, "err", err)
		c.End(ReasonGone, EndHangup)
		return
	}
	if back != "" && c.ringBack(back) {
		return
	}
	c.host.Poke()
}

// ID is the leg's call id.
func (l *Leg) ID() string { return l.id }

// EndLegOffer ends the offer of number leg leg (a leg is offered only to be taken by its
// bridge's holder).
func EndLegOffer(ctx context.Context, opts *Options, leg string) {
	if _, err := opts.Store.EndOffer(ctx, leg); err != nil && !errors.Is(err, store.ErrNotFound) {
		opts.Log.Warn("agents: offer of a number leg not ended", "leg", leg, "err", err)
	}
}
