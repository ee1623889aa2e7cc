package agents

// The session's PeerConnection: each offer from the browser makes a new Peer that replaces
// the old one, with trickled candidates held until the answer is out.

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// offer (re)negotiates the session's PeerConnection: a new Peer answers the browser's offer
// and replaces the old one, and a call in progress moves to it with its mute and hold.
func (s *session) offer(ctx context.Context, sdp string) {
	peer, err := s.hub.opts.Engine.NewPeer(func(st webrtc.PeerState) {
		if st == webrtc.PeerStateFailed {
			s.sendError(signal.CodeMedia, "the audio connection failed", "")
		}
	})
	if err != nil {
		s.refused(signal.CodeMedia, "cannot create a peer connection", "", err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.closePeer(peer)
		return
	}
	s.negotiating, s.heldCands = peer, nil
	s.mu.Unlock()
	peer.OnLocalCandidate(func(cand string) { s.localCandidate(peer, cand) })
	answer, err := peer.Answer(ctx, sdp)
	if err != nil {
		s.mu.Lock()
		if s.negotiating == peer {
			s.negotiating = nil
		}
		s.mu.Unlock()
		s.closePeer(peer)
		s.refused(signal.CodeMedia, "the offer was not accepted", "", err)
		return
	}

	s.mu.Lock()
	if s.closed || s.negotiating != peer {
		s.mu.Unlock()
		s.closePeer(peer)
		return
	}
	old, oldBridge := s.peer, s.bridge
	s.peer, s.bridge = peer, nil
	if c := s.call; c != nil && c.path != nil {
		s.bridge = s.newBridgeLocked(c)
		c.sink.bridge.Store(s.bridge)
	}
	s.mu.Unlock()
	if oldBridge != nil {
		oldBridge.End()
	}
	if old != nil {
		s.closePeer(old)
	}

	s.send(signal.SDPMessage{Type: signal.TypeAnswer, SDP: answer})
	s.mu.Lock()
	held := s.heldCands
	s.heldCands = nil
	if s.negotiating == peer {
		s.negotiating = nil
	}
	s.mu.Unlock()
	for _, c := range held {
		s.sendCandidate(c)
	}
}

func (s *session) localCandidate(peer *webrtc.Peer, cand string) {
	s.mu.Lock()
	switch {
	case s.negotiating == peer:
		s.heldCands = append(s.heldCands, cand)
		s.mu.Unlock()
		return
	case s.peer != peer:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.sendCandidate(cand)
}

func (s *session) sendCandidate(cand string) {
	raw := json.RawMessage("null") // end of candidates
	if cand != "" {
		raw = json.RawMessage(cand)
	}
	s.send(signal.CandidateMessage{Type: signal.TypeCandidate, Candidate: raw})
}

// closePeer closes a Peer the session is done with. pion's teardown errors change nothing for
// the agent (the next offer makes a new Peer), so they are only logged.
func (s *session) closePeer(p *webrtc.Peer) {
	if err := p.Close(); err != nil {
		s.hub.log.Debug("agents: peer closed with an error", "agent", s.agent.ID, "session", s.id, "err", err)
	}
}
