package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/cmd/internal/procs"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webhooks"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents"
)

// agentSide is the wiring of the agents' side: the WebRTC engine, the hub, and the placement
// of their calls through the carriers.
type agentSide struct {
	instance string // this instance's id among those sharing Redis
	engine   *webrtc.Engine
	hub      *agents.Hub
	calls    *agentCalls
}

func newAgentSide(cfg config, st *agentdb.Store, reg *carrier.Registry, placer *dispatch.Placer, actions *dispatch.Actions, public, adminToken string, log *slog.Logger) (*agentSide, error) {
	engine, err := webrtc.NewEngine(webrtc.EngineOptions{
		// On a loopback public URL (the demo, tests) browser and server share the machine.
		LoopbackOnly: isLoopback(public),
		UDPMuxPort:   cfg.agents.udpPort,
		PublicIPs:    cfg.agents.publicIPs,
		OnBridges:    procs.New(log).Bridges, // more Ps while many calls are bridged
	})
	if err != nil {
		return nil, err
	}
	calls := &agentCalls{st: st.Redis, reg: reg, placer: placer, actions: actions, log: log}
	instance := instanceID()
	hub := agents.NewHub(agents.HubOptions{
		Store: st, Engine: engine, Carriers: calls, ICEServers: cfg.deploy.iceServers,
		Instance: instance, PublicURL: public, RelaySecret: derivedSecret(adminToken, "agent media relay v1"),
		AllowedOrigins: cfg.agents.allowedOrigins,
		RingTimeout:    cfg.agents.ringTimeout, QueueTimeout: cfg.agents.queueTimeout, WrapUp: cfg.agents.wrapUp,
		Recording:    cfg.recording.hubOptions(),
		Dispositions: cfg.wrapUps().Dispositions, WrapUpWindow: cfg.wrapUps().Window,
		Staff: api.StaffToken(adminToken, st, agents.ErrNotStaff),
		Log:   log,
	})
	return &agentSide{instance: instance, engine: engine, hub: hub, calls: calls}, nil
}

// webhooks connects the carrier webhooks to the agents: inbound calls are routed to them, and
// media streams go to (and are pointed at) the instance holding the call's agent.
func (a *agentSide) webhooks(d *webhooks.Deps) {
	d.Inbound = inboundAgents{a.hub}
	d.Media = agentMedia{a.hub}
	d.Locate = a.hub
	d.Actions = a.calls.actions
}

// run runs the hub until ctx ends, then releases the engine's socket.
func (a *agentSide) run(ctx context.Context, log *slog.Logger) {
	if err := a.hub.Run(ctx); err != nil {
		log.Error("agents' notices are no longer received", "err", err)
	}
	if err := a.engine.Close(); err != nil {
		log.Warn("agents' media socket did not close cleanly", "err", err)
	}
}

type inboundAgents struct{ hub *agents.Hub }

func (i inboundAgents) Accept(ctx context.Context, c webhooks.InboundCall) error {
	return i.hub.Accept(ctx, agents.InboundCall(c))
}

type agentMedia struct{ hub *agents.Hub }

func (m agentMedia) StreamStarted(ctx context.Context, s *webhooks.MediaStream) (webhooks.MediaReceiver, error) {
	r, err := m.hub.StreamStarted(ctx, s.CallID, s)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// A call no agent has (placed through the API without one): its stream is taken
		// and its audio dropped, as before there were agents, rather than cut off.
		return noAgent{}, nil
	case err != nil:
		return nil, err
	}
	return r, nil
}

type noAgent struct{}

func (noAgent) Audio([]byte) {}
func (noAgent) DTMF(string)  {}
func (noAgent) Stopped()     {}

// demoAgent makes sure the one-command demo (embedded Redis) has an agent to sign in as, and
// prints its sign-in link. The token travels in the link's fragment, which the browser never
// sends to the server.
func demoAgent(ctx context.Context, st *agentdb.Store, public string, stdout io.Writer) error {
	token := agentdb.NewAgentToken("demo")
	if _, _, err := st.PutAgent(ctx, "demo", "Demo Agent", token, true); err != nil {
		return fmt.Errorf("demo agent: %w", err)
	}
	_, _ = fmt.Fprintf(stdout, "  softphone (demo agent): %s/agent#token=%s\n", public, token) // the banner is advice; a closed stdout must not stop the server
	return nil
}

func isLoopback(public string) bool {
	u, err := url.Parse(public)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// instanceID names this process among the instances sharing Redis.
func instanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// derivedSecret derives a secret every instance of a deployment shares from the admin token.
func derivedSecret(adminToken, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
