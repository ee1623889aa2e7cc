package agents

import (
	"context"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Revoking an agent: an admin rotated its token or deleted it. Every instance hears of it
// (store.NoticeAgentRevoked, or a heartbeat that finds the token gone) and ends the agent's
// session there at once, unless that session signed in with the token now in force.
//
// What happens to the agent's calls:
//   - a call ringing for it goes back to the queue: it is declined on the agent's behalf, so
//     the next free agent is offered it;
//   - a call in progress is hung up, as when the agent hangs up: its carrier ends the call,
//     the far end hears the line close. Whoever held the revoked token no longer speaks for
//     us, and nobody else knows what was being said to hand the call over mid-sentence.

const (
	// codeRevoked is the error a revoked session's softphone is sent before its socket closes.
	codeRevoked = "revoked"
	// reasonRevoked ends a call whose agent was revoked.
	reasonRevoked = "agent-revoked"
)

// revoked ends agent's session here if it did not sign in with token ("" ends any).
func (h *Hub) revoked(agent, token string) {
	s := h.session(agent)
	if s == nil {
		return
	}
	if s.revokedBy(token) {
		h.background(opTimeout, s.revoke)
	}
}

// revokedBy says whether a revocation that leaves token in force ("": none) ends s: a session
// that signed in with the new token after a rotation stays.
func (s *session) revokedBy(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return token == "" || s.tokenID != token
}

// revoke ends the session for good: the ringing call goes back to the queue, the call in
// progress is hung up, the softphone is told why and cut off, and the agent is offline.
func (s *session) revoke(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	r, c := s.ringing, s.call
	// Taken here, so the end of the call the hang-up brings about finds nothing to report.
	s.ringing, s.call = nil, nil
	s.mu.Unlock()
	if r != nil {
		if _, err := s.hub.st.WithdrawOffer(ctx, r.call, s.agent.ID); err != nil {
			s.hub.log.Warn("agents: ringing call of a revoked agent not withdrawn", "call", r.call, "err", err)
		}
		s.hub.send(r.holder, notice{Type: noticeDeclined, Call: r.call, Agent: s.agent.ID})
		s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: r.call, Reason: reasonRevoked})
	}
	if c != nil {
		if c.path != nil {
			c.path.Hangup()
		} else {
			s.hub.hangupCall(c.id, c.holder)
		}
		s.send(signal.EndedMessage{Type: signal.TypeEnded, CallID: c.id, Reason: reasonRevoked})
	}
	s.sendError(codeRevoked, "your sign-in was revoked; ask an admin for a new token", "")
	s.hub.log.Info("agents: session ended: the agent's token was revoked", "agent", s.agent.ID)
	s.close()
	if c != nil && c.path != nil {
		c.path.Close()
	}
	if err := s.hub.st.Disconnect(ctx, s.agent.ID, s.id); err != nil {
		s.hub.log.Warn("agents: presence of a revoked agent not removed", "agent", s.agent.ID, "err", err)
	}
}
