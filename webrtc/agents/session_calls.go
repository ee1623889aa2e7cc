package agents

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc"
)

// A session's calls: ringing, answering, declining, dialling, hanging up, mute and hold, and
// the end of a call with the wrap-up after it.

// newBridgeLocked joins call c's media path to the session's peer.
func (s *session) newBridgeLocked(c *agentCall) *webrtc.Bridge {
	b := webrtc.NewBridge(c.id, c.path, s.peer, webrtc.BridgeOptions{OnEvent: func(e webrtc.Event) {
		if e.Kind == webrtc.EventCarrierDTMF {
			s.send(digitMessage{Type: msgDTMF, CallID: e.CallID, Digit: e.Digit})
		}
	}})
	b.SetMuted(c.muted)
	b.SetHeld(c.held)
	return b
}

// connectMedia joins call c's carrier media to the session: directly if this instance holds
// it, through a relay to its holder otherwise. If the holder died or is stopping, the call's
// media comes back on a survivor (anchor.go): the session waits for it.
func (s *session) connectMedia(ctx context.Context, c *agentCall) {
	err := s.joinMedia(ctx, c)
	if err == nil || errors.Is(err, errNotTheCall) {
		return
	}
	s.mu.Lock()
	holder := c.holder
	s.mu.Unlock()
	if o, oerr := s.hub.st.Offer(ctx, c.id); oerr == nil && o.State == store.OfferAnswered && o.Agent == s.agent.ID {
		alive, aerr := s.hub.st.InstanceAlive(ctx, o.Holder)
		var refused *relayRefused
		// A holder that cannot be reached may have just died (its heartbeat has not lapsed
		// yet); one that answers has no such call for us.
		unreachable := holder != s.hub.opts.Instance && !errors.As(err, &refused)
		if aerr == nil && (o.Holder != holder || !alive || unreachable) {
			s.hub.log.Info("agents: call's holder moved or is gone; waiting for its media", "call", c.id,
				"agent", s.agent.ID, "holder", o.Holder, "err", err)
			s.awaitMedia(c)
			return
		}
	}
	if holder == s.hub.opts.Instance {
		s.hub.log.Info("agents: call media not joined", "call", c.id, "agent", s.agent.ID, "err", err)
		s.callEnded(ctx, c.id, reasonGone)
		return
	}
	s.hub.log.Warn("agents: relay to the call's holder failed", "call", c.id, "holder", holder, "err", err)
	s.sendError(codeMedia, "the call's audio could not be reached", c.id)
	s.hub.hangupCall(c.id, holder)
	s.callEnded(ctx, c.id, reasonMediaLost)
}

// errNotTheCall: the session is no longer on the call (it ended, or the session closed).
var errNotTheCall = errors.New("agents: the session is not on that call")

// joinMedia makes the path to call c's media, and the bridge to the session's peer.
func (s *session) joinMedia(ctx context.Context, c *agentCall) error {
	s.mu.Lock()
	if s.call != c || s.closed {
		s.mu.Unlock()
		return errNotTheCall
	}
	if c.joining || c.path != nil {
		s.mu.Unlock()
		return nil
	}
	c.joining = true
	holder, holderURL := c.holder, c.holderURL
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		c.joining = false
		s.mu.Unlock()
	}()
	sink := &agentSink{s: s, call: c.id}
	var path callPath
	if holder == s.hub.opts.Instance {
		held, err := s.hub.holderFor(ctx, c.id)
		if err == nil {
			if err = held.answered(s.agent.ID); err == nil {
				err = held.attach(s.agent.ID, sink)
			}
		}
		if err != nil {
			return err
		}
		path = &localPath{held: held, sink: sink}
	} else {
		p, err := s.hub.dialRelay(ctx, holderURL, c.id, s.agent.ID, sink)
		if err != nil {
			return err
		}
		path = p
	}
	s.mu.Lock()
	if s.call != c || c.path != nil || s.closed {
		s.mu.Unlock()
		path.Close()
		return nil
	}
	c.path, c.sink = path, sink
	if c.rejoin != nil {
		c.rejoin.Stop()
		c.rejoin = nil
	}
	if s.peer != nil {
		s.bridge = s.newBridgeLocked(c)
		sink.bridge.Store(s.bridge)
	}
	s.mu.Unlock()
	return nil
}

// rejoinPoll is how often a session waiting for its call's media looks for it in Redis, in
// case the holder's attach notice is lost.
const rejoinPoll = 500 * time.Millisecond

// mediaMoved: the path to the call's media broke without the call ending (its holder died or
// handed it over). The browser keeps its PeerConnection, hearing silence, while the call is
// re-anchored on a survivor; the session joins it there.
func (s *session) mediaMoved(ctx context.Context, callID string, k *agentSink) {
	s.mu.Lock()
	c := s.call
	if c == nil || c.id != callID || c.sink != k || c.path == nil {
		s.mu.Unlock()
		return
	}
	path, b := c.path, s.bridge
	c.path, c.sink = nil, nil
	s.bridge = nil
	s.mu.Unlock()
	if b != nil {
		b.End()
	}
	path.Close()
	s.hub.log.Info("agents: call's media path broke; waiting for it to come back", "call", callID, "agent", s.agent.ID)
	s.awaitMedia(c)
}

// awaitMedia waits, up to HubOptions.ReanchorGrace, for call c's media to be held by a live
// instance (the attach notice, or a look at its offer every rejoinPoll), then joins it.
func (s *session) awaitMedia(c *agentCall) {
	deadline := time.Now().Add(s.hub.opts.ReanchorGrace)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.call != c || s.closed || c.path != nil || c.rejoin != nil {
		return
	}
	c.rejoin = s.hub.after(rejoinPoll, func() { s.tryRejoin(c, deadline) })
}

func (s *session) tryRejoin(c *agentCall, deadline time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	if s.call != c || s.closed || c.path != nil {
		s.mu.Unlock()
		return
	}
	c.rejoin = nil
	s.mu.Unlock()
	o, err := s.hub.st.Offer(ctx, c.id)
	if err == nil && (o.State == store.OfferEnded || o.Agent != s.agent.ID) {
		s.callEnded(ctx, c.id, reasonMediaLost)
		return
	}
	holder := ""
	if err == nil {
		if alive, aerr := s.hub.st.InstanceAlive(ctx, o.Holder); aerr == nil && alive {
			holder = o.Holder
			s.mu.Lock()
			c.holder, c.holderURL = o.Holder, o.HolderURL
			s.mu.Unlock()
			if err = s.joinMedia(ctx, c); err == nil || errors.Is(err, errNotTheCall) {
				return
			}
		}
	}
	if time.Now().After(deadline) {
		s.hub.log.Warn("agents: call's media did not come back", "call", c.id, "agent", s.agent.ID, "err", err)
		s.sendError(codeMedia, "the call's audio could not be reached", c.id)
		s.hub.hangupCall(c.id, holder)
		s.callEnded(ctx, c.id, reasonMediaLost)
		return
	}
	s.mu.Lock()
	if s.call == c && !s.closed && c.path == nil && c.rejoin == nil {
		c.rejoin = s.hub.after(rejoinPoll, func() { s.tryRejoin(c, deadline) })
	}
	s.mu.Unlock()
}

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
	r := &ringing{call: n.Call, from: n.From, to: n.To, holder: n.Holder, holderURL: n.HolderURL, at: time.Now()}
	s.ringing = r
	s.mu.Unlock()
	s.send(ringingMessage{Type: msgRinging, ringView: ringView{CallID: r.call, From: r.from, To: r.to,
		TimeoutMS: s.hub.opts.RingTimeout.Milliseconds()}})
}

func (s *session) answer(ctx context.Context, callID string) {
	s.mu.Lock()
	r := s.ringing
	before := s.pres.State
	s.mu.Unlock()
	if r == nil || r.call != callID {
		s.sendError(codeNoCall, "no such call is ringing", callID)
		return
	}
	if err := s.hub.st.AnswerOffer(ctx, callID, s.agent.ID, s.id); err != nil {
		s.mu.Lock()
		if s.ringing == r {
			s.ringing = nil
		}
		s.mu.Unlock()
		switch {
		case errors.Is(err, store.ErrOfferGone):
			s.sendError(codeGone, "the call is no longer available", callID)
			s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reasonGone})
		case errors.Is(err, store.ErrReplaced):
			s.replaced()
		default:
			s.refused(codeUnavailable, "the call could not be answered; try again", callID, err)
		}
		return
	}
	now := time.Now()
	c := &agentCall{id: callID, direction: call.Inbound, from: r.from, to: r.to, state: call.InProgress,
		holder: r.holder, holderURL: r.holderURL, answeredAt: now, connected: true, before: before}
	s.mu.Lock()
	s.ringing = nil
	s.call = c
	s.pres.State, s.pres.Call, s.pres.Since, s.pres.Until = store.Busy, callID, now, time.Time{}
	s.mu.Unlock()
	s.send(callMessage{Type: msgCall, callView: c.view()})
	s.sendAvailability()
	// The call's record says who took it.
	if _, err := s.hub.st.Apply(ctx, call.Event{ID: callID + ":agent:" + s.agent.ID, CallID: callID,
		Agent: s.agent.ID, Detail: "answered by agent " + s.agent.ID, Source: call.SourceSwitchboard}); err != nil {
		s.hub.log.Warn("agents: answering agent not recorded", "call", callID, "err", err)
	}
	s.connectMedia(ctx, c)
}

func (s *session) decline(ctx context.Context, callID string) {
	s.mu.Lock()
	r := s.ringing
	if r == nil || r.call != callID {
		s.mu.Unlock()
		s.sendError(codeNoCall, "no such call is ringing", callID)
		return
	}
	s.ringing = nil
	s.mu.Unlock()
	if _, err := s.hub.st.WithdrawOffer(ctx, callID, s.agent.ID); err != nil {
		s.hub.log.Warn("agents: decline not stored", "call", callID, "err", err)
	}
	s.hub.send(r.holder, notice{Type: noticeDeclined, Call: callID, Agent: s.agent.ID})
	s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reasonDeclined})
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
		s.sendError(codeNoCall, "not on that call", callID)
		return
	}
	if c.path != nil {
		c.path.Hangup()
	} else {
		s.hub.hangupCall(c.id, c.holder)
	}
	s.callEnded(ctx, c.id, reasonAgentHangup)
}

func (s *session) setFlag(kind string, on bool) {
	s.mu.Lock()
	c, b := s.call, s.bridge
	if c == nil {
		s.mu.Unlock()
		s.sendError(codeNoCall, "no call to "+kind, "")
		return
	}
	if kind == msgMute {
		c.muted = on
	} else {
		c.held = on
	}
	v := c.view()
	s.mu.Unlock()
	if b != nil {
		if kind == msgMute {
			b.SetMuted(on)
		} else {
			b.SetHeld(on)
		}
	}
	s.send(callMessage{Type: msgCall, callView: v})
}

// dialCommand places a call from the softphone. Placing it can take a carrier round trip or
// two, so it runs apart from the read loop; the softphone hears of it through call messages.
func (s *session) dialCommand(to string) {
	if !validNumber(to) {
		s.sendError(codeBadRequest, "dial an E.164 number: + and country code, e.g. +15551234567", "")
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
	case errors.Is(err, store.ErrAgentBusy):
		return codeBusy, "you are already on a call"
	case errors.Is(err, store.ErrAgentRinging):
		return codeRinging, "a call is ringing: answer or decline it first"
	case errors.Is(err, store.ErrAgentOffline), errors.Is(err, store.ErrReplaced):
		return codeReplaced, "this session is no longer signed in"
	case errors.As(err, &pe):
		return codeCarrier, "the call could not be placed: " + pe.Reason
	case errors.Is(err, ErrBadNumber):
		return codeBadRequest, err.Error()
	}
	return codeCarrier, "the call could not be placed"
}

// startCall makes c the session's call, as placed by the agent (here or through the API).
func (s *session) startCall(ctx context.Context, c *agentCall) {
	s.mu.Lock()
	if s.call != nil && s.call.id == c.id {
		s.mu.Unlock()
		return
	}
	c.before = s.pres.State
	if c.before == store.Busy {
		c.before = store.Available
	}
	s.call = c
	s.pres.State, s.pres.Call, s.pres.Since, s.pres.Until = store.Busy, c.id, time.Now(), time.Time{}
	s.mu.Unlock()
	s.send(callMessage{Type: msgCall, callView: c.view()})
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
		reason = reasonCarrier // no carrier took it: the placement failed
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
	s.send(callMessage{Type: msgCall, callView: v})
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
	if r := s.ringing; r != nil && r.call == callID {
		s.ringing = nil
		s.mu.Unlock()
		s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reason})
		if reason == reasonMissed {
			// Nobody answered: the agent is evidently away from the desk.
			s.changeState(ctx, store.Away, time.Time{}, "")
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
	s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reason})
	if next == store.AvailabilityUnknown {
		next = c.before
	}
	if next != store.Away {
		next = store.Available
	}
	if c.connected {
		until := time.Now().Add(s.hub.opts.WrapUp)
		s.changeState(ctx, store.WrapUp, until, callID)
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

func (s *session) wrapUpDone(next store.Availability) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	wrapping := s.pres.State == store.WrapUp
	s.mu.Unlock()
	if wrapping {
		s.changeState(ctx, next, time.Time{}, "")
	}
}
