package monitor

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
)

// A call's media moves to another instance when its holder dies or stops (hand-over). The
// call's own agent follows it there; so does a supervisor's monitoring, on the same
// PeerConnection: only its path to the call's room changes.

// followTimeout bounds how long a monitoring waits for its call on a new holder after the
// call's media moved (the liveness TTL, the re-point and the agent joining again take about
// a second or two); it then ends as media-lost.
const followTimeout = 10 * time.Second

// followRetry is how often the new holder is asked meanwhile.
const followRetry = 200 * time.Millisecond

// Moved: the call's media went to another instance (its holder died or stopped, or the
// relay to it broke). The monitoring follows it: it leaves its old path and joins the call's
// room on its new holder, in the mode in force, once that instance holds the call and its
// agent again; the supervisor's PeerConnection stays as it is. If the call ends meanwhile, or
// is not there within followTimeout, the monitoring ends as media-lost.
func (m *monitor) Moved() {
	m.mu.Lock()
	old, mode := m.path, m.mode
	if m.stopped || old == nil {
		m.mu.Unlock()
		return // stopping, or following already
	}
	m.path = nil
	m.mu.Unlock()
	if mode == "" {
		old.close()
		m.Ended(held.ReasonMediaLost) // it never started: nothing to follow
		return
	}
	m.hub.opts.Log.Info("agents: monitored call moved; following it", "call", m.callID, "who", m.who)
	m.hub.host.Background(followTimeout, func(ctx context.Context) {
		old.close() // here, not in Moved, which must not block
		m.follow(ctx, mode)
	})
}

// FollowsMoves: a monitor follows its call to a new holder (held.Follower).
func (m *monitor) FollowsMoves() bool { return true }

// follow joins the call's room on its new holder, retrying until it can or ctx ends.
func (m *monitor) follow(ctx context.Context, mode string) {
	for !m.isStopped() {
		attempt, cancel := context.WithTimeout(ctx, followRetry*10) // a stalled instance is not waited for long
		code, _ := m.join(attempt, mode)
		cancel()
		if code == "" {
			m.hub.opts.Log.Info("agents: monitoring followed its call", "call", m.callID, "who", m.who)
			return
		}
		if o, err := m.hub.opts.Store.Offer(ctx, m.callID); err == nil && o.State == agentdb.OfferEnded {
			m.Ended(held.ReasonGone)
			return
		}
		select {
		case <-ctx.Done():
			m.Ended(held.ReasonMediaLost)
			return
		case <-time.After(followRetry):
		}
	}
}

// relayLeg is the room leg of a monitor on another instance, on the holder: the relay, which
// is told Moved rather than Ended when the call leaves this instance, so that the monitor
// follows it.
type relayLeg struct{ *relay.Conn }

// FollowsMoves: the monitor behind the relay follows its call (held.Follower).
func (relayLeg) FollowsMoves() bool { return true }
