package agents

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// A session's call media: the path to the call (directly when this instance holds it,
// through a relay when another does), the bridge from that path to the agent's peer, and the
// wait for a call whose media moved or whose holder died, until a survivor has it again.

// newBridgeLocked joins call c's media path to the session's peer.
func (s *session) newBridgeLocked(c *agentCall) *webrtc.Bridge {
	b := webrtc.NewBridge(c.id, c.path, s.peer, webrtc.BridgeOptions{OnEvent: func(e webrtc.Event) {
		if e.Kind == webrtc.EventCarrierDTMF {
			s.send(signal.DigitMessage{Type: signal.TypeDTMF, CallID: e.CallID, Digit: e.Digit})
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
	if o, oerr := s.hub.st.Offer(ctx, c.id); oerr == nil && o.State == agentdb.OfferAnswered && o.Agent == s.agent.ID {
		alive, aerr := s.hub.st.InstanceAlive(ctx, o.Holder)
		var refused *relay.RefusedError
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
		s.callEnded(ctx, c.id, held.ReasonGone)
		return
	}
	s.hub.log.Warn("agents: relay to the call's holder failed", "call", c.id, "holder", holder, "err", err)
	s.sendError(signal.CodeMedia, "the call's audio could not be reached", c.id)
	s.hub.hangupCall(c.id, holder)
	s.callEnded(ctx, c.id, held.ReasonMediaLost)
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
		heldCall, err := s.hub.holderFor(ctx, c.id)
		if err == nil {
			err = heldCall.Join(ctx, s.agent.ID, sink)
		}
		if err != nil {
			return err
		}
		path = &localPath{held: heldCall, sink: sink, agent: s.agent.ID}
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
	if err == nil && (o.State == agentdb.OfferEnded || o.Agent != s.agent.ID) {
		s.callEnded(ctx, c.id, held.ReasonMediaLost)
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
		s.sendError(signal.CodeMedia, "the call's audio could not be reached", c.id)
		s.hub.hangupCall(c.id, holder)
		s.callEnded(ctx, c.id, held.ReasonMediaLost)
		return
	}
	s.mu.Lock()
	if s.call == c && !s.closed && c.path == nil && c.rejoin == nil {
		c.rejoin = s.hub.after(rejoinPoll, func() { s.tryRejoin(c, deadline) })
	}
	s.mu.Unlock()
}
