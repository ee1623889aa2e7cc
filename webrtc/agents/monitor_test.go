package agents

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/monitor"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// supHz is the supervisor's tone.
const supHz = 1800

// testStaff plays HubOptions.Staff: "sup-token" is a supervisor, "agent-token" an agent.
func testStaff(_ context.Context, token string) (string, error) {
	switch token {
	case "sup-token":
		return "supervisor:sue", nil
	case "agent-token":
		return "", ErrNotStaff
	}
	return "", agentdb.ErrUnauthorized
}

// monitorClient is a supervisor's console as the monitor socket sees it: a WebSocket and a
// simulated browser speaking supHz.
type monitorClient struct {
	ws    *websocket.Conn
	agent *agentsim.SimAgent

	mu   sync.Mutex
	msgs []map[string]any
	wmu  sync.Mutex
	done chan struct{}
}

// dialMonitor opens the monitor socket and says the first message; it does not negotiate.
func dialMonitor(t *testing.T, h *testHub, token, callID, mode string) *monitorClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(h.url, "http") + "/agent/monitor"
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	m := &monitorClient{ws: ws, done: make(chan struct{})}
	go m.read()
	t.Cleanup(func() {
		_ = ws.Close()
		<-m.done
		if m.agent != nil {
			_ = m.agent.Close()
		}
	})
	m.send(t, map[string]any{"type": "monitor", "token": token, "call_id": callID, "mode": mode})
	return m
}

func (m *monitorClient) send(t *testing.T, msg any) {
	t.Helper()
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if err := m.ws.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
}

func (m *monitorClient) read() {
	defer close(m.done)
	for {
		_, raw, err := m.ws.ReadMessage()
		if err != nil {
			m.mu.Lock()
			m.msgs = append(m.msgs, map[string]any{"type": "closed"})
			m.mu.Unlock()
			return
		}
		var msg map[string]any
		if json.Unmarshal(raw, &msg) != nil {
			continue
		}
		m.mu.Lock()
		a := m.agent
		m.mu.Unlock()
		switch msg["type"] {
		case signal.TypeAnswer:
			if a != nil {
				_ = a.Accept(msg["sdp"].(string)) // a bad answer shows as no audio
			}
		case signal.TypeCandidate:
			if c, ok := msg["candidate"]; ok && c != nil && a != nil {
				b, _ := json.Marshal(c)
				_ = a.AddICECandidate(string(b))
			}
		}
		m.mu.Lock()
		m.msgs = append(m.msgs, msg)
		m.mu.Unlock()
	}
}

// expect waits for a message of type typ (and, for "monitor", of mode) and returns it.
func (m *monitorClient) expect(t *testing.T, typ, mode string) map[string]any {
	t.Helper()
	var got map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for got == nil && time.Now().Before(deadline) {
		redistest.Eventually(t, 5*time.Second, "a message", func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			for i, msg := range m.msgs {
				if msg["type"] == typ && (mode == "" || msg["mode"] == mode) {
					got = msg
					m.msgs = append(m.msgs[:i:i], m.msgs[i+1:]...)
					return true
				}
			}
			return time.Now().After(deadline)
		})
	}
	if got == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		t.Fatalf("no %s %s message; got %v", typ, mode, m.msgs)
	}
	return got
}

// negotiate offers a simulated browser speaking supHz and waits for its audio to connect.
func (m *monitorClient) negotiate(t *testing.T) {
	t.Helper()
	a, err := agentsim.NewSimAgent(agentsim.SimAgentOptions{ToneHz: supHz, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.agent = a
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer, err := a.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.send(t, map[string]any{"type": signal.TypeOffer, "sdp": offer})
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatalf("monitor audio: %v", err)
	}
}

// TestMonitorListenWhisperBarge: a supervisor monitors a live call, on the instance holding
// it and from another one (through the relay). Listening, it hears the caller and the agent
// and nobody hears it; whispering, the agent hears it and the caller's side stays more than
// 60 dB below; barging, all hear all; stopping, the call goes on as a plain relay and the
// agent's and caller's audio with it.
func TestMonitorListenWhisperBarge(t *testing.T) {
	t.Run("on the holder", func(t *testing.T) {
		h := newTestHub(t, "")
		testMonitorModes(t, h, h)
	})
	t.Run("from another instance", func(t *testing.T) {
		ns := redistest.Namespace(t)
		testMonitorModes(t, newTestHub(t, ns), newTestHub(t, ns))
	})
}

// testMonitorModes runs the modes on a call held by h, monitored through mh.
func testMonitorModes(t *testing.T, h, mh *testHub) {
	ann := h.agent(t, "ann", annHz)
	id, stream := answeredBy(t, h, ann, annHz)
	c := h.held(id)
	if c == nil {
		t.Fatal("the call is not held here")
	}
	presence := func() agentdb.Presence {
		p, err := h.st.Presence(context.Background(), "ann")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := presence()

	start := time.Now()
	sup := dialMonitor(t, mh, "sup-token", id, MonitorListen)
	sup.expect(t, "monitor", MonitorListen)
	sup.negotiate(t)
	if mh != h && mh.held(id) != nil {
		t.Fatal("the monitoring instance took the call's media instead of relaying to its holder")
	}

	const window = 3200 // 400 ms
	settle := func(what string) {
		t.Helper()
		stream.reset()
		ann.Agent.ResetRecording()
		sup.agent.ResetRecording()
		redistest.Eventually(t, 5*time.Second, what, func() bool {
			return len(stream.recent(1<<20)) >= 2*window && len(ann.Agent.Recording()) >= 2*window &&
				len(sup.agent.Recording()) >= 2*window
		})
	}
	redistest.Eventually(t, 5*time.Second, "the supervisor hears both", func() bool {
		rec := last(sup.agent.Recording(), 1600)
		return len(rec) == 1600 && power(rec, callerHz) > heardPower && power(rec, annHz) > heardPower
	})
	t.Logf("listen: the supervisor heard both %v after the monitor socket opened", time.Since(start).Round(time.Millisecond))

	settle("listening")
	hears(t, "the supervisor listening", last(sup.agent.Recording(), window), map[float64]bool{callerHz: true, annHz: true, supHz: false})
	hears(t, "ann with a listener", last(ann.Agent.Recording(), window), map[float64]bool{callerHz: true, supHz: false})
	hears(t, "the caller with a listener", stream.recent(window), map[float64]bool{annHz: true, supHz: false})
	if p := presence(); p.State != before.State || p.Call != before.Call || p.Session != before.Session {
		t.Errorf("monitoring changed the agent's presence: %+v, was %+v", p, before)
	}

	// Whisper: the agent hears the supervisor, the caller does not.
	sup.send(t, map[string]any{"type": "mode", "mode": MonitorWhisper})
	sup.expect(t, "monitor", MonitorWhisper)
	settle("whispering")
	annRec := last(ann.Agent.Recording(), window)
	hears(t, "ann whispered to", annRec, map[float64]bool{callerHz: true, supHz: true})
	hears(t, "the supervisor whispering", last(sup.agent.Recording(), window), map[float64]bool{callerHz: true, annHz: true, supHz: false})
	toAgent, toCaller := power(annRec, supHz), power(stream.recent(window), supHz)
	rel := 10 * math.Log10(max(toCaller, 1e-300)/toAgent)
	t.Logf("whisper: the supervisor's tone at the agent %.4f, at the caller %.3g (%.1f dB)", toAgent, toCaller, rel)
	if rel > -60 {
		t.Errorf("the caller hears the whisper at %.1f dB of the agent's level, want below -60 dB", rel)
	}
	if p := power(stream.recent(window), annHz); p < heardPower {
		t.Errorf("the caller no longer hears the agent while the supervisor whispers (%.4f)", p)
	}

	// Barge: all hear all.
	sup.send(t, map[string]any{"type": "mode", "mode": MonitorBarge})
	sup.expect(t, "monitor", MonitorBarge)
	settle("barged")
	hears(t, "the caller barged in on", stream.recent(window), map[float64]bool{annHz: true, supHz: true, callerHz: false})
	hears(t, "ann barged in on", last(ann.Agent.Recording(), window), map[float64]bool{callerHz: true, supHz: true})
	hears(t, "the supervisor barging", last(sup.agent.Recording(), window), map[float64]bool{callerHz: true, annHz: true, supHz: false})

	// Stop: the supervisor leaves; the call goes on as before, a plain relay.
	sup.send(t, map[string]any{"type": "stop"})
	sup.expect(t, signal.TypeEnded, "")
	redistest.Eventually(t, 5*time.Second, "the room gone with the monitor", func() bool { return !c.IsRoom() })
	stream.reset()
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 5*time.Second, "the call's audio after the monitor", func() bool {
		return len(stream.recent(1<<20)) >= 2*window && len(ann.Agent.Recording()) >= 2*window
	})
	hears(t, "the caller after", stream.recent(window), map[float64]bool{annHz: true, supHz: false})
	hears(t, "ann after", last(ann.Agent.Recording(), window), map[float64]bool{callerHz: true, supHz: false})
	if h.held(id) == nil {
		t.Fatal("the call ended with its monitor")
	}
	if p := presence(); p.State != before.State || p.Call != id {
		t.Errorf("the agent's presence after monitoring: %+v, was %+v", p, before)
	}
	// Each start and change of mode is audited with who, the call and the mode.
	redistest.Eventually(t, 5*time.Second, "the audit", func() bool {
		log, err := h.st.AuditLog(context.Background(), 20)
		if err != nil {
			return false
		}
		var seen []string
		for _, a := range log {
			if a.Target == id && a.Actor == "supervisor:sue" {
				seen = append(seen, a.Action+" "+a.Detail)
			}
		}
		return strings.Contains(strings.Join(seen, ","), "call.monitor mode listen") &&
			strings.Contains(strings.Join(seen, ","), "call.monitor.mode mode whisper") &&
			strings.Contains(strings.Join(seen, ","), "call.monitor.mode mode barge")
	})
}

// TestMonitorLeavingNeverEndsTheCall: a supervisor's socket that just drops takes its leg out
// of the room and nothing else; a call that ends tells the supervisor.
func TestMonitorLeavingNeverEndsTheCall(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, stream := answeredBy(t, h, ann, annHz)
	c := h.held(id)

	sup := dialMonitor(t, h, "sup-token", id, MonitorBarge)
	sup.expect(t, "monitor", MonitorBarge)
	sup.negotiate(t)
	redistest.Eventually(t, 5*time.Second, "the caller hears the supervisor", func() bool {
		return power(stream.recent(3200), supHz) > heardPower
	})
	_ = sup.ws.Close() // the supervisor's tab closes
	redistest.Eventually(t, 5*time.Second, "the room gone", func() bool { return !c.IsRoom() })
	stream.reset()
	redistest.Eventually(t, 5*time.Second, "the call going on", func() bool {
		rec := stream.recent(1 << 20)
		return len(rec) >= 3200 && power(last(rec, 3200), annHz) > heardPower && power(last(rec, 3200), supHz) < absentPower
	})
	if h.held(id) == nil {
		t.Fatal("the call ended when its monitor left")
	}

	// Another supervisor listens; the caller hangs up: the supervisor is told.
	sup2 := dialMonitor(t, h, "sup-token", id, MonitorListen)
	sup2.expect(t, "monitor", MonitorListen)
	stream.hangUp()
	expect(t, ann, "the end", typed(signal.TypeEnded, id))
	if m := sup2.expect(t, signal.TypeEnded, ""); m["reason"] != held.ReasonHangup {
		t.Errorf("the supervisor was told the call ended with %v, want %s", m["reason"], held.ReasonHangup)
	}
}

// TestMonitorRefusals: only staff may monitor, a live call here, in a known mode; the token
// goes in the first message.
func TestMonitorRefusals(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, _ := answeredBy(t, h, ann, annHz)

	for _, tc := range []struct{ token, call, mode, code string }{
		{"agent-token", id, MonitorListen, monitor.CodeNotStaff},
		{"nobody", id, MonitorListen, signal.CodeUnauthorized},
		{"", id, MonitorListen, signal.CodeUnauthorized},
		{"sup-token", id, "shout", signal.CodeBadRequest},
		{"sup-token", "no-such-call", MonitorListen, signal.CodeNoCall},
	} {
		m := dialMonitor(t, h, tc.token, tc.call, tc.mode)
		if e := m.expect(t, signal.TypeError, ""); e["code"] != tc.code {
			t.Errorf("%+v: refused with %v, want %s", tc, e["code"], tc.code)
		}
		m.expect(t, "closed", "")
	}
	if c := h.held(id); c == nil || c.IsRoom() {
		t.Error("a refused monitor changed the call")
	}
}

// TestMonitorEndsWithTheHub: a hub that stops with a supervisor monitoring a call does not
// wait for the supervisor's browser: the monitoring ends with "shutdown".
func TestMonitorEndsWithTheHub(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.agent(t, "ann", annHz)
	id, _ := answeredBy(t, h, ann, annHz)
	sup := dialMonitor(t, h, "sup-token", id, MonitorListen)
	sup.expect(t, "monitor", MonitorListen)
	sup.negotiate(t)
	h.stop() // returns only once every goroutine of the hub is done
	if m := sup.expect(t, signal.TypeEnded, ""); m["reason"] != monitor.ReasonShutdown {
		t.Errorf("the monitoring ended with %v, want %s", m["reason"], monitor.ReasonShutdown)
	}
}
