package webrtc_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// Every test's peers, agents, bridges, engines and hubs must be gone when the package's tests
// end. The hub's tests run against a real Redis.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

func newTestEngine(t *testing.T, opts webrtc.EngineOptions) *webrtc.Engine {
	t.Helper()
	opts.LoopbackOnly = true
	e, err := webrtc.NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return e
}

// connectAgent negotiates a SimAgent with a new Peer of e, as the signalling WebSocket will
// (offer in, answer out), and waits until both ends are connected. Cleanups close both.
func connectAgent(t *testing.T, e *webrtc.Engine, opts agentsim.SimAgentOptions, onState func(webrtc.PeerState)) (*webrtc.Peer, *agentsim.SimAgent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, err := e.NewPeer(onState)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	opts.LoopbackOnly = true
	agent, err := agentsim.NewSimAgent(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })

	start := time.Now()
	offer, err := agent.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := peer.Answer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Accept(answer); err != nil {
		t.Fatal(err)
	}
	if err := agent.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "peer connected", func() bool { return peer.State() == webrtc.PeerStateConnected })
	t.Logf("offer to connected in %v", time.Since(start))
	return peer, agent
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
