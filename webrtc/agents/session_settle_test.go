package agents

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// TestCallEndedWhileRedisWasAwayFreesTheAgent: the caller hangs up while Redis is down, so the
// session cannot store the agent's wrap-up. Once Redis is back the agent must be available
// again, not busy on a call that is over, offered nothing until it signs out (the incident
// drill, cmd/incidentdrill, found agents left so).
func TestCallEndedWhileRedisWasAwayFreesTheAgent(t *testing.T) {
	redis := redistest.NewServer(t)
	h := newTestHubOn(t, redis.URL(), "")
	ann := h.agent(t, "ann", 440)

	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	stream := startStream(t, h.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "busy", availability("busy"))

	redis.Stop()
	stream.hangUp()
	expect(t, ann, "the end", typed(signal.TypeEnded, id))
	// The wrap-up is tried and not stored, and a few heartbeats fail, while Redis is away.
	time.Sleep(time.Second)
	redis.Start()

	expect(t, ann, "available again", availability("available"))
	redistest.Eventually(t, 5*time.Second, "the agent available in Redis", func() bool {
		p, err := h.st.Presence(context.Background(), "ann")
		return err == nil && p.State == agentdb.Available && p.Call == ""
	})
}
