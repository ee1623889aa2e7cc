package agents

// The agent's presence as this session keeps it: state changes, the agent's own choice of
// availability, heartbeats, and repair of what a failed write left behind.

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// changeState moves the agent from the state the session knows to state. If another instance
// changed it meanwhile, the session takes the real state instead.
func (s *session) changeState(ctx context.Context, state agentdb.Availability, until time.Time, callID string) {
	s.mu.Lock()
	if s.closed {
		// Over (signed out, replaced, revoked): a late end of its call must not write the
		// presence back.
		s.mu.Unlock()
		return
	}
	cur := s.pres
	next := cur
	next.State, next.Since, next.Until, next.Call = state, time.Now(), until, callID
	if state != agentdb.WrapUp && state != agentdb.Busy {
		next.Next = agentdb.AvailabilityUnknown
	}
	s.mu.Unlock()
	err := s.hub.st.SetState(ctx, s.id, cur.State, cur.Call, next, s.hub.opts.PresenceTTL)
	var conflict *agentdb.StateConflict
	switch {
	case errors.As(err, &conflict):
		s.mu.Lock()
		s.pres.State, s.pres.Call = conflict.State, conflict.Call
		s.mu.Unlock()
	case errors.Is(err, agentdb.ErrReplaced):
		s.replaced()
		return
	case errors.Is(err, agentdb.ErrPresenceGone):
		s.mu.Lock()
		s.pres = next
		s.mu.Unlock()
		s.restore(ctx)
	case err != nil:
		s.hub.log.Warn("agents: state not stored", "agent", s.agent.ID, "state", state, "err", err)
		return
	default:
		s.mu.Lock()
		s.pres = next
		s.mu.Unlock()
	}
	s.sendAvailability()
	if state == agentdb.Available {
		if err := s.hub.st.NotifyAgentFree(ctx, s.agent.ID); err != nil {
			s.hub.log.Warn("agents: free agent not announced", "agent", s.agent.ID, "err", err)
		}
	}
}

// availability is the agent's own choice of state: available, away, or offline (log out).
// On a call it is taken after the call; in wrap-up it ends the wrap-up now.
func (s *session) availability(ctx context.Context, name string) {
	want, err := agentdb.ParseAvailability(name)
	if err != nil || (want != agentdb.Available && want != agentdb.Away && want != agentdb.Offline) {
		s.sendError(signal.CodeBadRequest, "availability is available, away or offline", "")
		return
	}
	if want == agentdb.Offline {
		s.logout(ctx)
		return
	}
	s.mu.Lock()
	cur := s.pres
	if s.wrapTimer != nil && cur.State == agentdb.WrapUp {
		s.wrapTimer.Stop()
	}
	s.mu.Unlock()
	if cur.State == agentdb.Busy {
		next := cur
		next.Next = want
		if err := s.hub.st.SetState(ctx, s.id, cur.State, cur.Call, next, s.hub.opts.PresenceTTL); err == nil {
			s.mu.Lock()
			s.pres.Next = want
			s.mu.Unlock()
		}
		s.sendAvailability()
		return
	}
	s.changeState(ctx, want, time.Time{}, "")
}

// heartbeat keeps the agent's presence alive while the browser is connected.
func (s *session) heartbeat(ctx context.Context) {
	s.mu.Lock()
	conn := s.conn
	live := conn != nil && !s.closed
	token := s.tokenID
	s.mu.Unlock()
	if !live {
		return // let the presence lapse unless the browser comes back
	}
	conn.Ping()
	switch err := s.hub.st.Heartbeat(ctx, s.agent.ID, s.id, token, s.hub.opts.PresenceTTL); {
	case errors.Is(err, agentdb.ErrRevoked):
		s.revoke(ctx)
	case errors.Is(err, agentdb.ErrReplaced):
		s.replaced()
	case errors.Is(err, agentdb.ErrPresenceGone):
		s.restore(ctx)
	case err != nil:
		s.hub.log.Warn("agents: heartbeat failed", "agent", s.agent.ID, "err", err)
	default:
		s.settle(ctx)
	}
}

// settle repairs what a state change that could not be stored left behind: a session with no
// call whose presence still says busy (its call ended while Redis was away, so the wrap-up
// was never written), or a wrap-up past its end (its end was not written). Without it the
// agent stays busy, and is offered no call, until it signs out. The incident drill found it
// (cmd/incidentdrill: Redis stopped while agents were on calls). Answering and dialling set
// the call and the busy state together, so an idle session that believes it is busy is
// always such a leftover.
func (s *session) settle(ctx context.Context) {
	s.mu.Lock()
	idle := s.call == nil && s.ringing == nil && !s.closed
	p := s.pres
	s.mu.Unlock()
	next := agentdb.Available
	if p.Next == agentdb.Away {
		next = agentdb.Away
	}
	switch {
	case !idle:
	case p.State == agentdb.Busy, p.State == agentdb.WrapUp && !p.Until.IsZero() && time.Now().After(p.Until):
		s.hub.log.Info("agents: state repaired after a change that was not stored", "agent", s.agent.ID,
			"was", p.State, "call", p.Call, "now", next)
		s.changeState(ctx, next, time.Time{}, "")
	}
}

// restore writes the session's presence back after it expired while the session lived.
func (s *session) restore(ctx context.Context) {
	s.mu.Lock()
	p, closed := s.pres, s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	if _, err := s.hub.st.Connect(ctx, p, s.hub.opts.PresenceTTL); err != nil {
		s.hub.log.Warn("agents: presence not restored", "agent", s.agent.ID, "err", err)
	}
}
