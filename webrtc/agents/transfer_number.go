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
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Blind transfer to a phone number: the call's agent hands the caller to an E.164 number.
// The instance holding the caller's stream places an outbound leg to the number through the
// carrier side (the same placer as the agents' calls, with its failover), its media stream
// pointed back at itself. The transferring agent is released at once and wraps up; the caller
// hears the hold tone while the number rings. When the far end answers, its stream arrives
// here and the two carrier legs are bridged: the leg is the call's agent side (a mediaSink),
// so frames pass both ways untouched, as between a caller and an agent, with nothing decoded.
// Either leg hanging up ends the other. A leg that does not connect (busy, no answer within
// the queue timeout, failed, refused by every carrier) gives the caller back to the
// transferring agent, rung again, or to the queue if that agent cannot take it, as a transfer
// to an agent does.
//
// The bridge lives on the caller's holder: if that instance dies or stops, the caller's call
// is re-anchored elsewhere as usual but the leg is hung up (it is not re-pointed).

// noticeToNumber, to the holder: the call's agent transferred it to number To on leg Leg.
const noticeToNumber = "to-number"

// phaseNumber: the call's agent side is an outbound leg to a number, ringing or bridged.
const phaseNumber = phaseEnded + 1

// transferToNumber hands the call of offer o, answered by o.Agent, to number.
func (h *Hub) transferToNumber(ctx context.Context, o agentdb.Offer, number string) error {
	from, leg := o.Agent, store.NewCallID()
	if _, err := h.st.TransferToNumber(ctx, o.Call, from, leg, number, offerTTL); err != nil {
		if errors.Is(err, agentdb.ErrConsulting) {
			return transferRefused(signal.CodeBusy, "a consult is going: complete or cancel it first")
		}
		return transferError(err)
	}
	if _, err := h.st.Apply(ctx, call.Event{ID: o.Call + ":transfer:" + leg, CallID: o.Call,
		Detail: "transferred by agent " + from + " to " + number + " (call " + leg + ")", Source: call.SourceSwitchboard}); err != nil {
		h.log.Warn("agents: transfer not recorded", "call", o.Call, "err", err)
	}
	h.log.Info("agents: call transferred to a number", "call", o.Call, "from", from, "leg", leg)
	h.send(o.Holder, notice{Type: noticeToNumber, Call: o.Call, By: from, To: number, Leg: leg})
	if p, err := h.st.Presence(ctx, from); err == nil && p.Instance != "" {
		h.send(p.Instance, notice{Type: noticeEnded, Call: o.Call, Agent: from, Reason: reasonTransferred})
	}
	return nil
}

// transferNumberNotice: the call held here was transferred to a number (noticeToNumber).
func (h *Hub) transferNumberNotice(ctx context.Context, n notice) {
	c, err := h.holderFor(ctx, n.Call)
	if err != nil {
		h.log.Warn("agents: a call transferred to a number is not held here", "call", n.Call, "err", err)
		h.endLegOffer(ctx, n.Leg)
		return
	}
	c.numberTransferred(n.By, n.To, n.Leg)
}

func (h *Hub) endLegOffer(ctx context.Context, leg string) {
	if _, err := h.st.EndOffer(ctx, leg); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Warn("agents: offer of a number leg not ended", "leg", leg, "err", err)
	}
}

// outLeg is the outbound leg of a blind transfer to a number, as the caller's held call
// sees it: its agent side while the number rings and once it answers.
type outLeg struct {
	c              *heldCall
	id, number, by string
	stream         atomic.Pointer[streamRef] // the far end's stream, once it answered

	mu          sync.Mutex
	done        bool
	answerTimer *time.Timer
}

// Audio sends the caller's frame to the far end, once it answered.
func (l *outLeg) Audio(ulaw []byte) {
	if r := l.stream.Load(); r != nil {
		_ = r.s.SendAudio(ulaw) // a stream that cannot take audio has ended, and says so through Stopped
	}
}

// DTMF: a carrier media stream cannot send digits into its call; the caller's digits are
// dropped at the bridge.
func (l *outLeg) DTMF(string) {}

// Ended: the caller's call is over; the leg is hung up.
func (l *outLeg) Ended(string) { l.finish(true) }

// Moved: the caller's call went to another instance; the bridge does not follow it.
func (l *outLeg) Moved() { l.finish(true) }

// finish ends the leg once: its offer ends, its stream closes, and (hangup) the carrier hangs
// it up. It reports whether this call did it.
func (l *outLeg) finish(hangup bool) bool { return l.finishIf(hangup, false) }

// finishIf is finish; with unanswered, only for a leg whose far end has not answered (checked
// under the lock a stream's arrival takes).
func (l *outLeg) finishIf(hangup, unanswered bool) bool {
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
	h := l.c.hub
	h.untrackLeg(l)
	h.background(opTimeout, func(ctx context.Context) {
		h.endLegOffer(ctx, l.id)
		if hangup {
			if err := h.opts.Carriers.Hangup(ctx, l.id); err != nil {
				h.log.Warn("agents: number leg not hung up", "leg", l.id, "call", l.c.id, "err", err)
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
func (l *outLeg) place() {
	h := l.c.hub
	l.mu.Lock()
	if !l.done {
		l.answerTimer = h.after(h.opts.QueueTimeout, func() { l.failed("no-answer") })
	}
	l.mu.Unlock()
	h.background(2*opTimeout, func(ctx context.Context) {
		err := h.opts.Carriers.Place(ctx, Placement{CallID: l.id, To: l.number, MediaURL: h.opts.PublicURL})
		if err != nil {
			h.log.Info("agents: number leg not placed", "call", l.c.id, "leg", l.id, "err", err)
			l.failed(reasonCarrier)
			return
		}
		if _, err := h.st.Apply(ctx, call.Event{ID: l.id + ":transfer-of:" + l.c.id, CallID: l.id,
			Detail: "blind transfer of call " + l.c.id + " by agent " + l.by, Source: call.SourceSwitchboard}); err != nil {
			h.log.Warn("agents: number leg's origin not recorded", "leg", l.id, "err", err)
		}
	})
}

// failed: the leg did not connect (reason: a carrier state, or carrier-failed); the caller
// goes back to the transferring agent, or the queue.
func (l *outLeg) failed(reason string) {
	if !l.finishIf(true, true) {
		return // over already, or answered: its end is then the far end hanging up (Stopped)
	}
	l.c.numberFailed(l, reason)
}

// streamStarted: the far end answered and its stream arrived; the legs are bridged.
func (l *outLeg) streamStarted(s carrierStream) (MediaReceiver, error) {
	l.mu.Lock()
	if l.done || l.stream.Load() != nil {
		l.mu.Unlock()
		return nil, errCallOver
	}
	ref := &streamRef{s: s}
	l.stream.Store(ref)
	if l.answerTimer != nil {
		l.answerTimer.Stop()
	}
	l.mu.Unlock()
	if !l.c.numberAnswered(l) {
		l.finish(true)
		return nil, errCallOver
	}
	return &legReceiver{l: l, ref: ref}, nil
}

// legReceiver takes the far end's frames to the caller.
type legReceiver struct {
	l   *outLeg
	ref *streamRef
}

func (r *legReceiver) Audio(ulaw []byte) {
	_ = r.l.c.audioFrom(r.l, ulaw) // a caller's stream that cannot take audio has ended and ends the call
}

// DTMF: the far end's digits are not passed on (a carrier stream cannot send them).
func (r *legReceiver) DTMF(string) {}

// Stopped: the far end hung up; the caller's call ends too.
func (r *legReceiver) Stopped() {
	if r.l.stream.Load() != r.ref {
		return
	}
	r.l.finish(false)
	r.l.c.end(reasonHangup, endHangup)
}

// carrierEnded: the carrier says the leg ended (st terminal) before or after it answered.
func (l *outLeg) carrierEnded(st call.State) {
	if l.stream.Load() == nil {
		l.failed(st.String())
		return
	}
	l.finish(false)
	l.c.end(reasonHangup, endHangup)
}

// numberTransferred: the call's agent from handed it to number, on leg legID. from's side
// lets go, the caller hears the hold tone while the number rings, and the leg is placed.
func (c *heldCall) numberTransferred(from, number, legID string) {
	l := &outLeg{c: c, id: legID, number: number, by: from}
	c.mu.Lock()
	if c.phase != phaseAnswered || c.agent != from {
		c.mu.Unlock()
		c.hub.background(opTimeout, func(ctx context.Context) { c.hub.endLegOffer(ctx, legID) })
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
	if old != nil {
		old.s.Ended(reasonTransferred)
	}
	for _, s := range others {
		s.Ended(reasonTransferred)
	}
	c.hub.trackLeg(l)
	l.place()
}

// numberAnswered: leg l's far end answered; the hold tone stops and the legs are bridged.
// false if the call no longer waits for l.
func (c *heldCall) numberAnswered(l *outLeg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.sink.Load(); c.phase != phaseNumber || cur == nil || cur.s != l {
		return false
	}
	c.stopToneLocked()
	c.connectedForRecording()
	c.hub.log.Info("agents: call bridged to a number", "call", c.id, "leg", l.id)
	return true
}

// numberFailed: leg l did not connect. The caller, still hearing the hold tone, goes back to
// the agent who transferred it, rung again, or to the queue, for up to the queue timeout
// from now.
func (c *heldCall) numberFailed(l *outLeg, reason string) {
	c.mu.Lock()
	if cur := c.sink.Load(); c.phase != phaseNumber || cur == nil || cur.s != l {
		c.mu.Unlock()
		return
	}
	c.sink.Store(nil)
	back := c.transferFrom
	c.phase, c.transferFrom = phaseWaiting, ""
	c.queueDeadline = time.Now().Add(c.hub.opts.QueueTimeout)
	if c.queueTimer != nil {
		c.queueTimer.Stop()
	}
	c.queueTimer = c.hub.after(c.hub.opts.QueueTimeout, c.queueTimedOut)
	c.mu.Unlock()
	c.hub.log.Info("agents: a number did not take a transferred call; it goes back", "call", c.id, "leg", l.id, "reason", reason, "to", back)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := c.hub.st.Apply(ctx, call.Event{ID: c.id + ":transfer:" + l.id + ":failed", CallID: c.id,
		Detail: "transfer to " + l.number + " did not connect (" + reason + "); back to agent " + back, Source: call.SourceSwitchboard}); err != nil {
		c.hub.log.Warn("agents: failed transfer not recorded", "call", c.id, "err", err)
	}
	if err := c.hub.st.NumberLegFailed(ctx, c.id, l.id); err != nil {
		c.hub.log.Warn("agents: a call back from its number could not be queued", "call", c.id, "err", err)
		c.end(reasonGone, endHangup)
		return
	}
	if back != "" && c.ringBack(back) {
		return
	}
	c.hub.poke()
}

// trackLeg and untrackLeg keep the number legs bridged here, by their call id, for their
// stream and their carrier state.
func (h *Hub) trackLeg(l *outLeg) {
	h.mu.Lock()
	h.legs[l.id] = l
	h.mu.Unlock()
}

func (h *Hub) untrackLeg(l *outLeg) {
	h.mu.Lock()
	if h.legs[l.id] == l {
		delete(h.legs, l.id)
	}
	h.mu.Unlock()
}

func (h *Hub) leg(id string) *outLeg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.legs[id]
}

// legChanged follows a number leg's carrier state: its end (busy, no answer, failed, hung up).
func (h *Hub) legChanged(callID string, st call.State) {
	if !st.Terminal() {
		return
	}
	if l := h.leg(callID); l != nil {
		l.carrierEnded(st)
	}
}
