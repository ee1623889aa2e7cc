package agents

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// A session's calls: ringing, answering, declining, dialling, hanging up, mute and hold, and
// the end of a call with the wrap-up after it. Joining a call's media is session_media.go.

// ring shows a call offered to the agent.
func (s *session) ring(ctx context.Context, n notice) {
	s.mu.Lock()
	if s.closed || s.call != nil || (s.ringing != nil && s.ringing.call != n.Call) {
		s.mu.Unlock()
		// Reservations make this rare (a stale ring after a reconnect): give the call back.
		if _, err := s.hub.st.WithdrawOffer(ctx, n.Call, s.agent.ID); err != nil {
			s.hub.log.Warn("agents: stale offer not withdrawn", "call", n.Call, "agent", s.agent.ID, "err", err)
		}
		s.hub.send(n.Holder, notice{Type: noticeDeclined, Call: n.Call, Agent: s.agent.ID})
		return
	}
	r := &ringing{call: n.Call, from: n.From, to: n.To, holder: n.Holder, holderURL: n.HolderURL, at: time.Now(), consultBy: n.By}
	s.ringing = r
	s.mu.Unlock()
	s.send(signal.RingingMessage{Type: signal.TypeRinging, RingView: signal.RingView{CallID: r.call, From: r.from, To: r.to,
		TimeoutMS: s.hub.opts.RingTimeout.Milliseconds(), ConsultBy: r.consultBy}})
}

func (s *session) answer(ctx context.Context, callID string) {
	s.mu.Lock()
	r := s.ringing
	before := s.pres.State
	s.mu.Unlock()
	if r == nil || r.call != callID {
		s.sendError(signal.CodeNoCall, "no such call is ringing", callID)
		return
	}
	answer := s.hub.st.AnswerOffer
	if r.consultBy != "" {
		answer = s.hub.st.AnswerConsult
	}
	if err := answer(ctx, callID, s.agent.ID, s.id); err != nil {
		s.mu.Lock()
		if s.ringing == r {
			s.ringing = nil
		}
		s.mu.Unlock()
		switch {
		case errors.Is(err, agentdb.ErrOfferGone):
			s.sendError(signal.CodeGone, "the call is no longer available", callID)
			s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: callID, Reason: held.ReasonGone})
		case errors.Is(err, agentdb.ErrReplaced):
			s.replaced()
		default:
			s.refused(signal.CodeUnavailable, "the call could not be answered; try again", callID, err)
		}
		return
	}
	now := time.Now()
	c := &agentCall{id: callID, direction: call.Inbound, from: r.from, to: r.to, state: call.InProgress,
		holder: r.holder, holderURL: r.holderURL, answeredAt: now, connected: true, before: before,
		consultBy: r.consultBy}
	s.mu.Lock()
	s.ringing = nil
	s.call = c
	s.pres.State, s.pres.Call, s.pres.Since, s.pres.Until = agentdb.Busy, callID, now, time.Time{}
	s.mu.Unlock()
	s.send(signal.CallMessage{Type: signal.TypeCall, CallView: c.view()})
	s.sendAvailability()
	// The call's record says who took it.
	detail := "answered by agent " + s.agent.ID
	if r.consultBy != "" {
		detail = "agent " + s.agent.ID + " joined to consult with agent " + r.consultBy
	}
	if _, err := s.hub.st.Apply(ctx, call.Event{ID: callID + ":agent:" + s.agent.ID, CallID: callID,
		Agent: s.agent.ID, Detail: detail, Source: call.SourceSwitchboard}); err != nil {
		s.hub.log.Warn("agents: answering agent not recorded", "call", callID, "err", err)
	}
	s.connectMedia(ctx, c)
}

func (s *session) decline(ctx context.Context, callID string) {
	s.mu.Lock()
	r := s.ringing
	if r == nil || r.call != callID {
		s.mu.Unlock()
		s.sendError(signal.CodeNoCall, "no such call is ringing", callID)
		return
	}
	s.ringing = nil
	s.mu.Unlock()
	if r.consultBy != "" {
		if err := s.hub.st.EndConsult(ctx, callID, s.agent.ID); err != nil {
			s.hub.log.Warn("agents: declined consult not stored", "call", callID, "err", err)
		}
		s.hub.send(r.holder, notice{Type: noticeConsultDo, Call: callID, By: s.agent.ID, State: held.ConsultDeclined})
		s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: callID, Reason: held.ReasonDeclined})
		return
	}
	if _, err := s.hub.st.WithdrawOffer(ctx, callID, s.agent.ID); err != nil {
		s.hub.log.Warn("agents: decline not stored", "call", callID, "err", err)
	}
	s.hub.send(r.holder, notice{Type: noticeDeclined, Call: callID, Agent: s.agent.ID})
	s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: callID, Reason: held.ReasonDeclined})
}

func (s *session) hangup(ctx context.Context, callID string) {
	s.mu.Lock()
	if r := s.ringing; r != nil && r.call == callID {
		s.mu.Unlock()
		s.decline(ctx, callID)
		return
	}
	c := s.call
	s.mu.Unlock()
	if c == nil || (callID != "" && c.id != callID) {
		s.sendError(signal.CodeNoCall, "not on that call", callID)
		return
	}
	if c.path != nil {
		c.path.Hangup()
	} else {
		s.hub.hangupCall(c.id, c.holder)
	}
	s.callEnded(ctx, c.id, held.ReasonAgentHangup)
}

func (s *session) setFlag(kind string, on bool) {
	s.mu.Lock()
	c, b := s.call, s.bridge
	if c == nil {
		s.mu.Unlock()
		s.sendError(signal.CodeNoCall, "no call to "+kind, "")
		return
	}
	if kind == signal.TypeMute {
		c.muted = on
	} else {
		c.held = on
	}
	v := c.view()
	s.mu.Unlock()
	if b != nil {
		if kind == signal.TypeMute {
			b.SetMuted(on)
		} else {
			b.SetHeld(on)
		}
	}
	s.send(signal.CallMessage{Type: signal.TypeCall, CallView: v})
}

// dialCommand places a call from the softphone. Placing it can take a carrier round trip or
// two, so it runs apart from the read loop; the softphone hears of it through call messages.
func (s *session) dialCommand(to string) {
	if !signal.ValidNumber(to) {
		s.sendError(signal.CodeBadRequest, "dial an E.164 number: + and country code, e.g. +15551234567", "")
		return
	}
	s.hub.background(2*opTimeout, func(ctx context.Context) {
		if _, err := s.hub.dial(ctx, s.agent.ID, s, to); err != nil {
			code, msg := dialErrorCode(err)
			s.refused(code, msg, "", err)
		}
	})
}

func dialErrorCode(err error) (code, message string) {
	var pe *PlaceError
	switch {
	case errors.Is(err, agentdb.ErrAgentBusy):
		return signal.CodeBusy, "you are already on a call"
	case errors.Is(err, agentdb.ErrAgentRinging):
		return signal.CodeRinging, "a call is ringing: answer or decline it first"
	case errors.Is(err, agentdb.ErrAgentOffline), errors.Is(err, agentdb.ErrReplaced):
		return signal.CodeReplaced, "this session is no longer signed in"
	case errors.As(err, &pe):
		return signal.CodeCarrier, "the call could not be placed: " + pe.Reason
	case errors.Is(err, ErrBadNumber):
		return signal.CodeBadRequest, err.Error()
	}
	return signal.CodeCarrier, "the call could not be placed"
}

// startCall makes c the session's call, as placed by the agent (here or through the API).
func (s *session) startCall(ctx context.Context, c *agentCall) {
	s.mu.Lock()
	if s.call != nil && s.call.id == c.id {
		s.mu.Unlock()
		return
	}
	c.before = s.pres.State
	if c.before == agentdb.Busy {
		c.before = agentdb.Available
	}
	s.call = c
	s.pres.State, s.pres.Call, s.pres.Since, s.pres.Until = agentdb.Busy, c.id, time.Now(), time.Time{}
	s.mu.Unlock()
	s.send(signal.CallMessage{Type: signal.TypeCall, CallView: c.view()})
	s.sendAvailability()
	s.connectMedia(ctx, c)
}

// dialed: the agent placed a call through the API on another instance.
func (s *session) dialed(ctx context.Context, callID, to string) {
	o, err := s.hub.st.Offer(ctx, callID)
	if err != nil || o.Agent != s.agent.ID {
		return
	}
	if _, err := s.hub.adopt(o); err != nil {
		return
	}
	s.startCall(ctx, &agentCall{id: callID, direction: call.Outbound, to: to, state: call.Queued,
		holder: o.Holder, holderURL: o.HolderURL})
}

// mediaReady: the holder of the session's call has its carrier media and no path to us.
func (s *session) mediaReady(ctx context.Context, callID, holder, holderURL string) {
	s.mu.Lock()
	c := s.call
	ok := c != nil && c.id == callID && c.path == nil
	waiting := false
	if ok {
		c.holder, c.holderURL = holder, holderURL
		if c.rejoin != nil {
			// Waiting for the media to come back: it has.
			waiting = true
			c.rejoin.Stop()
			c.rejoin = nil
		}
	}
	s.mu.Unlock()
	switch {
	case waiting:
		if err := s.joinMedia(ctx, c); err != nil {
			s.awaitMedia(c)
		}
	case ok:
		s.connectMedia(ctx, c)
	}
}

// callState shows a change the carrier reported for the session's call. A call that ends
// before its media ever flowed (busy, no answer) ends here.
func (s *session) callState(callID string, st call.State) {
	s.mu.Lock()
	c := s.call
	if c == nil || c.id != callID || !call.Advances(c.state, st) {
		s.mu.Unlock()
		return
	}
	reason := st.String()
	if st == call.Failed && c.state == call.Queued {
		reason = held.ReasonCarrier // no carrier took it: the placement failed
	}
	c.state = st
	if st == call.InProgress {
		c.connected = true
		if c.answeredAt.IsZero() {
			c.answeredAt = time.Now()
		}
	}
	v := c.view()
	s.mu.Unlock()
	s.send(signal.CallMessage{Type: signal.TypeCall, CallView: v})
	if st.Terminal() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		s.callEnded(ctx, callID, reason)
	}
}

// callEnded finishes the ringing call or the call the session is on, once; the agent then
// wraps up after a connected call and goes back to its state before the call otherwise.
func (s *session) callEnded(ctx context.Context, callID, reason string) {
	s.mu.Lock()
	// "transferred" is about the call the agent was on, never a ringing one: its notices come
	// by several paths and may arrive after the same call rings the agent again (a transfer
	// that did not connect rings its agent back).
	if r := s.ringing; r != nil && r.call == callID && reason != held.ReasonTransferred {
		s.ringing = nil
		s.mu.Unlock()
		s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: callID, Reason: reason})
		if reason == held.ReasonMissed {
			// Nobody answered: the agent is evidently away from the desk.
			s.changeState(ctx, agentdb.Away, time.Time{}, "")
		}
		return
	}
	c := s.call
	if c == nil || c.id != callID {
		s.mu.Unlock()
		return
	}
	s.call = nil
	b := s.bridge
	s.bridge = nil
	next := s.pres.Next
	if c.rejoin != nil {
		c.rejoin.Stop()
		c.rejoin = nil
	}
	s.mu.Unlock()
	if b != nil {
		b.End()
	}
	if c.path != nil {
		c.path.Close()
	}
	s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: callID, Reason: reason})
	if next == agentdb.AvailabilityUnknown {
		next = c.before
	}
	if next != agentdb.Away {
		next = agentdb.Available
	}
	if c.connected {
		until := time.Now().Add(s.hub.opts.WrapUp)
		s.changeState(ctx, agentdb.WrapUp, until, callID)
		s.mu.Lock()
		if s.wrapTimer != nil {
			s.wrapTimer.Stop()
		}
		if !s.closed {
			s.wrapTimer = s.hub.after(s.hub.opts.WrapUp, func() { s.wrapUpDone(next) })
		}
		s.mu.Unlock()
		return
	}
	s.changeState(ctx, next, time.Time{}, "")
}

func (s *session) wrapUpDone(next agentdb.Availability) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	wrapping := s.pres.State == agentdb.WrapUp
	s.mu.Unlock()
	if wrapping {
		s.changeState(ctx, next, time.Time{}, "")
	}
}
