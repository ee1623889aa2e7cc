package agents

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// slowHeartbeat keeps a hub from finding a revocation by its heartbeat: only the notice from
// the other instance can end the session within the test's deadlines.
func slowHeartbeat(o *HubOptions) { o.Heartbeat, o.PresenceTTL = time.Minute, 2*time.Minute }

// TestRotationEndsSessionsOnEveryInstance: ann is on a call held by instance B; an admin on
// instance A rotates her token. Her session on B ends at once, the call is hung up through
// its carrier, she is offline; signing in with the new token works, and is not undone.
func TestRotationEndsSessionsOnEveryInstance(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns, slowHeartbeat)
	ann := b.agent(t, "ann", 440)
	id := b.inbound(t, "+15557654321")
	startStream(t, b.Hub, id, 1000)
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))

	token := agentdb.NewAgentToken("ann")
	start := time.Now()
	if _, _, err := a.st.PutAgent(context.Background(), "ann", "Ann", token, true); err != nil {
		t.Fatal(err)
	}
	if m := expect(t, ann, "the call ended", typed(signal.TypeEnded, id)); m.Reason != reasonRevoked {
		t.Fatalf("call: %s", m.Raw)
	}
	if m := expect(t, ann, "revoked", typed(signal.TypeError, "")); m.Code != codeRevoked {
		t.Fatalf("session: %s", m.Raw)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the session ended %v after the rotation", took)
	}
	redistest.Eventually(t, 5*time.Second, "the call hung up", b.carriers.has(&b.carriers.hungUp, id))
	redistest.Eventually(t, 5*time.Second, "the session gone", func() bool { return b.session("ann") == nil })
	redistest.Eventually(t, 5*time.Second, "ann offline", offline(b, "ann"))

	b.signIn(t, token, 440)
	s := b.session("ann")
	now, err := b.st.AuthenticateAgent(context.Background(), token)
	if err != nil || s == nil {
		t.Fatalf("signed in again: %v", err)
	}
	if s.revokedBy(now.TokenID) || !s.revokedBy("0123456789abcdef") || !s.revokedBy("") {
		t.Fatal("a session is ended by the rotation it signed in after, or not by a later one or a deletion")
	}
}

// TestDeletionEndsTheSessionAndRequeuesTheRingingCall: ann is deleted while a call rings for
// her; her session ends, and the call goes back to the queue and rings bob.
func TestDeletionEndsTheSessionAndRequeuesTheRingingCall(t *testing.T) {
	ns := redistest.Namespace(t)
	a := newTestHub(t, ns)
	b := newTestHub(t, ns, slowHeartbeat)
	ann := b.agent(t, "ann", 440)
	id := b.inbound(t, "+15557654321")
	startStream(t, b.Hub, id, 1000)
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))

	if err := a.st.DeleteAgent(context.Background(), "ann"); err != nil {
		t.Fatal(err)
	}
	if m := expect(t, ann, "the ringing ended", typed(signal.TypeEnded, id)); m.Reason != reasonRevoked {
		t.Fatalf("ringing: %s", m.Raw)
	}
	if m := expect(t, ann, "revoked", typed(signal.TypeError, "")); m.Code != codeRevoked {
		t.Fatalf("session: %s", m.Raw)
	}
	redistest.Eventually(t, 5*time.Second, "the session gone", func() bool { return b.session("ann") == nil })

	bob := a.agent(t, "bob", 660)
	expect(t, bob, "the call rings bob", typed(signal.TypeRinging, id))
	if p, _ := b.st.Presence(context.Background(), "ann"); p.State != agentdb.Offline {
		t.Fatalf("deleted ann: %+v", p)
	}
}

func offline(h *testHub, agent string) func() bool {
	return func() bool {
		p, err := h.st.Presence(context.Background(), agent)
		return err == nil && p.State == agentdb.Offline
	}
}

// TestHeartbeatEndsARevokedSessionWhoseNoticeWasLost: Pub/Sub may lose the notice of a
// rotation; the session's next heartbeat finds its token is no longer the agent's and ends it.
func TestHeartbeatEndsARevokedSessionWhoseNoticeWasLost(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", 440)
	s := h.session("ann")
	// As if the agent's token had been rotated and the notice never arrived: the session's
	// token is no longer the one in force.
	s.mu.Lock()
	s.tokenID = "0123456789abcdef"
	s.mu.Unlock()
	if m := expect(t, ann, "revoked", typed(signal.TypeError, "")); m.Code != codeRevoked {
		t.Fatalf("session: %s", m.Raw)
	}
	redistest.Eventually(t, 5*time.Second, "the session gone", func() bool { return h.session("ann") == nil })
	redistest.Eventually(t, 5*time.Second, "ann offline", offline(h, "ann"))
}
