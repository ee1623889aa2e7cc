package agents

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/media"
)

// Monitoring: a supervisor (or the admin) listens to a live call, whispers to its agent, or
// barges in. The supervisor's browser is one more leg of the call's room (room.go) on the
// instance holding the call's media, with its own WebSocket and PeerConnection: it is no
// agent session, so it never rings, never changes anyone's presence and never takes a call.
// The mode is the leg's role in the room's mixer, so switching it is a change of who hears
// whom, not a renegotiation:
//
//	listen   media.RoleListen   hears the caller and the agent; nobody hears it
//	whisper  media.RoleWhisper  hears both; only the call's agent hears it
//	barge    media.RoleTalk     all hear all
//
// A monitor leaving takes its leg out of the room; back to two legs the call is the plain
// relay it was. The monitor never ends the call.

// Monitor modes, as the console and the monitor socket name them.
const (
	MonitorListen  = "listen"
	MonitorWhisper = "whisper"
	MonitorBarge   = "barge"
)

// Monitor socket messages, besides signal's offer, candidate, answer, ended and error.
const (
	typeMonitor    = "monitor"   // first client message: token, call_id, mode; then the server's state
	typeMonitorSet = "mode"      // client: switch to mode
	typeMonitorEnd = "stop"      // client: stop monitoring (closing the socket does too)
	codeNotStaff   = "forbidden" // a valid token whose role may not monitor
	reasonStopped  = "stopped"   // the supervisor stopped
	reasonShutdown = "shutdown"  // the instance is stopping
)

// ErrNotStaff is what HubOptions.Staff returns for a valid token whose role may not monitor
// (an agent's).
var ErrNotStaff = errors.New("agents: this token may not monitor calls")

// StaffAuthenticator says who a staff token is ("admin", "supervisor:<id>"), for audits and
// logs; agentdb.ErrUnauthorized for a token of nobody, ErrNotStaff for an agent's.
type StaffAuthenticator func(ctx context.Context, token string) (who string, err error)

// monitorMessage is the monitor socket's state message (server) and first message (client).
type monitorMessage struct {
	Type   string `json:"type"`
	Token  string `json:"token,omitempty"`
	CallID string `json:"call_id"`
	Mode   string `json:"mode"`
	// ICEServers (HubOptions.ICEServers) go to staff with the first state, for their
	// PeerConnection.
	ICEServers json.RawMessage `json:"ice_servers,omitempty"`
}

// monitorRole is the room role of a monitor mode; RoleUnknown for no mode.
func monitorRole(mode string) media.Role {
	switch mode {
	case MonitorListen:
		return media.RoleListen
	case MonitorWhisper:
		return media.RoleWhisper
	case MonitorBarge:
		return media.RoleTalk
	}
	return media.RoleUnknown
}

// HandleMonitor is a supervisor's monitor WebSocket (docs/agents.md, Monitoring): the first
// message names the staff token, the call and the mode; never the URL, which ends up in logs.
func (h *Hub) HandleMonitor() echo.HandlerFunc {
	return func(c echo.Context) error {
		if !h.origins.Allow(c.Request()) {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "origin not allowed"})
		}
		ws, err := signalUpgrader.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		defer ws.Close() //nolint:errcheck // monitoring is over when this handler returns
		ws.SetReadLimit(signal.MaxClientMessage)
		_ = ws.SetReadDeadline(time.Now().Add(helloTimeout)) // a closed socket fails the read below
		_, raw, err := ws.ReadMessage()
		if err != nil {
			return nil
		}
		reject := func(code, message string) error {
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second)) // closing after it either way
			_ = ws.WriteJSON(signal.ErrorMessage{Type: signal.TypeError, Code: code, Message: message})
			return nil
		}
		var first monitorMessage
		if json.Unmarshal(raw, &first) != nil || first.Type != typeMonitor || first.CallID == "" {
			return reject(signal.CodeUnauthorized, "say monitor with your token, the call and the mode first")
		}
		role := monitorRole(first.Mode)
		if role == media.RoleUnknown {
			return reject(signal.CodeBadRequest, "the mode is listen, whisper or barge")
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), opTimeout)
		defer cancel()
		who, err := h.staff(ctx, first.Token)
		switch {
		case errors.Is(err, agentdb.ErrUnauthorized):
			return reject(signal.CodeUnauthorized, "that token is not valid")
		case errors.Is(err, ErrNotStaff):
			return reject(codeNotStaff, "only a supervisor or the admin may monitor calls")
		case err != nil:
			h.log.Warn("agents: monitor token not checked", "err", err)
			return reject(signal.CodeUnavailable, "cannot check the token now; try again")
		}
		conn, ok := h.newAgentConn(ws, who)
		if !ok {
			return nil // shutting down
		}
		defer func() {
			conn.Close()
			<-conn.Done() // the last words (an error, ended) go out within the farewell's bound
		}()
		m := &monitor{hub: h, who: who, callID: first.CallID, conn: conn}
		if code, msg := m.join(ctx, first.Mode); code != "" {
			conn.Send(signal.ErrorMessage{Type: signal.TypeError, Code: code, Message: msg, CallID: first.CallID})
			return nil
		}
		m.serve(ws)
		m.stop(reasonStopped)
		return nil
	}
}

// staff authenticates a monitor's token with HubOptions.Staff; without one nobody may monitor.
func (h *Hub) staff(ctx context.Context, token string) (string, error) {
	if h.opts.Staff == nil || token == "" {
		return "", agentdb.ErrUnauthorized
	}
	return h.opts.Staff(ctx, token)
}

// audit records who monitors which call in which mode (a start, or a change of mode).
func (h *Hub) audit(who, callID, mode string, start bool) {
	action := "call.monitor"
	if !start {
		action = "call.monitor.mode"
	}
	h.log.Info("agents: monitoring", "who", who, "call", callID, "mode", mode, "start", start)
	h.background(opTimeout, func(ctx context.Context) {
		if err := h.st.Audited(ctx, store.Audit{Actor: who, Action: action, Target: callID, Detail: "mode " + mode}); err != nil {
			h.log.Warn("agents: monitoring not audited", "who", who, "call", callID, "err", err)
		}
	})
}

// monitor is one supervisor's monitoring of one call: a leg of the call's room (it is the
// leg's mediaSink when this instance holds the call, the relay's sink when another does)
// joined to the supervisor's PeerConnection by a bridge.
type monitor struct {
	hub    *Hub
	who    string
	callID string
	conn   *signal.Conn

	bridge atomic.Pointer[webrtc.Bridge]

	mu      sync.Mutex
	path    monitorPath
	mode    string // in force; "" until the holder took the first
	peer    *webrtc.Peer
	stopped bool
}

// monitorPath is how a monitor reaches its call's room: directly on the holder, or through
// a relay to it.
type monitorPath interface {
	SendAudio(ulaw []byte) error
	// setMode asks for mode; the answer comes to monitor.modeSet, at once or from the relay.
	setMode(mode string)
	close()
}

// join makes the monitor's path to the call's room and asks for mode; a refusal is a code
// and a message for the supervisor.
func (m *monitor) join(ctx context.Context, mode string) (code, message string) {
	held, err := m.hub.holderFor(ctx, m.callID)
	var path monitorPath
	switch {
	case err == nil:
		if err := held.AddLeg(m, media.RoleListen); err != nil {
			return signal.CodeNoCall, "the call cannot be monitored now: it is not connected to an agent"
		}
		path = &localMonitor{held: held, m: m}
	case errors.Is(err, errNotHere):
		o, oerr := m.hub.st.Offer(ctx, m.callID)
		if oerr != nil || o.State != agentdb.OfferAnswered || o.HolderURL == "" {
			return signal.CodeNoCall, "the call cannot be monitored now: it is not connected to an agent"
		}
		agent := monitorRelayAgent + m.who
		p, derr := m.hub.dialRelay(ctx, o.HolderURL, m.callID, agent, m)
		var refused *relay.RefusedError
		switch {
		case errors.As(derr, &refused):
			return signal.CodeNoCall, "the call cannot be monitored now: it is not connected to an agent"
		case derr != nil:
			m.hub.log.Warn("agents: monitor relay to the call's holder failed", "call", m.callID, "holder", o.Holder, "err", derr)
			return signal.CodeMedia, "the call's audio could not be reached; try again"
		}
		path = relayMonitor{p}
	default:
		return signal.CodeNoCall, "no such live call"
	}
	m.mu.Lock()
	m.path = path
	m.mu.Unlock()
	path.setMode(mode)
	return "", ""
}

// modeSet: the holder took mode, or err says why not. The first mode taken starts the
// monitoring; every one is audited and told to the supervisor.
func (m *monitor) modeSet(mode string, err error) {
	if err != nil {
		m.mu.Lock()
		started := m.mode != ""
		m.mu.Unlock()
		m.sendError(signal.CodeNoCall, err.Error())
		if !started {
			m.conn.Close() // the monitoring never started: the socket closes after the error
		}
		return
	}
	m.mu.Lock()
	first, changed := m.mode == "", m.mode != mode
	m.mode = mode
	m.mu.Unlock()
	if changed {
		m.hub.audit(m.who, m.callID, mode, first)
	}
	msg := monitorMessage{Type: typeMonitor, CallID: m.callID, Mode: mode}
	if first {
		msg.ICEServers = m.hub.opts.ICEServers
	}
	m.conn.Send(msg)
}

// serve reads the supervisor's messages until the socket closes or monitoring stops.
func (m *monitor) serve(ws *websocket.Conn) {
	ttl := m.hub.opts.PresenceTTL
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(ttl)) })
	ping := time.NewTicker(max(ttl/3, 100*time.Millisecond))
	defer ping.Stop()
	// The pinger's goroutine is this handler's: it ends with the read loop below. It also
	// ends the monitoring when the hub shuts down, whose wait includes the socket's writer.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-m.hub.done:
				m.Ended(reasonShutdown)
				return
			case <-ping.C:
				m.conn.Ping()
			}
		}
	}()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(ttl)) // a closed socket fails the read below
		_, raw, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var msg signal.ClientMessage
		if json.Unmarshal(raw, &msg) != nil {
			m.sendError(signal.CodeBadRequest, "messages are JSON objects with a type")
			continue
		}
		switch msg.Type {
		case signal.TypePing:
			m.conn.Send(map[string]string{"type": signal.TypePong})
		case signal.TypeOffer:
			m.offer(msg.SDP)
		case signal.TypeCandidate:
			m.mu.Lock()
			p := m.peer
			m.mu.Unlock()
			if p != nil && len(msg.Candidate) > 0 && string(msg.Candidate) != "null" {
				if err := p.AddICECandidate(string(msg.Candidate)); err != nil {
					m.sendError(signal.CodeBadRequest, "the candidate was not taken")
				}
			}
		case typeMonitorSet:
			m.setMode(msg.Mode)
		case typeMonitorEnd:
			return
		default:
			m.sendError(signal.CodeBadRequest, "a monitor socket takes offer, candidate, mode and stop")
		}
		if m.isStopped() {
			return
		}
	}
}

func (m *monitor) sendError(code, message string) {
	m.conn.Send(signal.ErrorMessage{Type: signal.TypeError, Code: code, Message: message, CallID: m.callID})
}

// offer answers the supervisor's PeerConnection and bridges it to the monitor's leg. One
// offer per socket: a mode change needs none.
func (m *monitor) offer(sdp string) {
	m.mu.Lock()
	again := m.peer != nil || m.stopped
	m.mu.Unlock()
	if again {
		m.sendError(signal.CodeBadRequest, "one offer per monitoring; open a new socket to start again")
		return
	}
	peer, err := m.hub.opts.Engine.NewPeer(func(st webrtc.PeerState) {
		if st == webrtc.PeerStateFailed {
			m.sendError(signal.CodeMedia, "the audio connection failed")
		}
	})
	if err != nil {
		m.hub.log.Warn("agents: monitor peer not made", "who", m.who, "err", err)
		m.sendError(signal.CodeMedia, "cannot create a peer connection")
		return
	}
	m.mu.Lock()
	m.peer = peer
	m.mu.Unlock()
	// Candidates go out after the answer: the browser cannot take them before.
	var cmu sync.Mutex
	var held []string
	answered := false
	sendCand := func(cand string) {
		raw := json.RawMessage("null")
		if cand != "" {
			raw = json.RawMessage(cand)
		}
		m.conn.Send(signal.CandidateMessage{Type: signal.TypeCandidate, Candidate: raw})
	}
	peer.OnLocalCandidate(func(cand string) {
		cmu.Lock()
		defer cmu.Unlock()
		if !answered {
			held = append(held, cand)
			return
		}
		sendCand(cand)
	})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	answer, err := peer.Answer(ctx, sdp)
	if err != nil {
		m.hub.log.Info("agents: monitor offer refused", "who", m.who, "err", err)
		m.sendError(signal.CodeMedia, "the offer was not accepted")
		return
	}
	m.mu.Lock()
	leg := m.path
	m.mu.Unlock()
	b := webrtc.NewBridge(m.callID, leg, peer, webrtc.BridgeOptions{})
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		b.End()
		return
	}
	m.bridge.Store(b)
	m.mu.Unlock()
	m.conn.Send(signal.SDPMessage{Type: signal.TypeAnswer, SDP: answer})
	cmu.Lock()
	answered = true
	for _, c := range held {
		sendCand(c)
	}
	cmu.Unlock()
}

// setMode asks for the monitor's new mode.
func (m *monitor) setMode(mode string) {
	if monitorRole(mode) == media.RoleUnknown {
		m.sendError(signal.CodeBadRequest, "the mode is listen, whisper or barge")
		return
	}
	m.mu.Lock()
	path := m.path
	m.mu.Unlock()
	path.setMode(mode)
}

func (m *monitor) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

// stop ends the monitoring once: the leg leaves the room (the call goes on), the supervisor
// is told why, and the peer closes.
func (m *monitor) stop(reason string) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	peer, path := m.peer, m.path
	m.mu.Unlock()
	if path != nil {
		path.close()
	}
	if b := m.bridge.Swap(nil); b != nil {
		b.End()
	}
	if peer != nil {
		if err := peer.Close(); err != nil {
			m.hub.log.Debug("agents: monitor peer closed with an error", "who", m.who, "err", err)
		}
	}
	m.conn.Send(signal.EndedMessage{Type: signal.TypeEnded, CallID: m.callID, Reason: reason})
	m.conn.Close()
}

// The monitor as the room's mediaSink.

func (m *monitor) Audio(ulaw []byte) {
	if b := m.bridge.Load(); b != nil {
		b.Audio(ulaw)
	}
}
func (m *monitor) DTMF(string) {} // a supervisor hears the caller's digits in band or not at all

// Ended: the call is over. The socket's read loop then ends and stop cleans up.
func (m *monitor) Ended(reason string) {
	m.conn.Send(signal.EndedMessage{Type: signal.TypeEnded, CallID: m.callID, Reason: reason})
	m.conn.Close()
}

// Moved: the call's media went to another instance, and monitoring does not follow it.
func (m *monitor) Moved() { m.Ended(reasonMediaLost) }

// Mode: the relay's answer to a mode asked for (relay.ModeSink).
func (m *monitor) Mode(mode string, err error) { m.modeSet(mode, err) }

// monitorRelayAgent starts the agent a monitor's relay names: no agent id has a colon, so a
// relay token for a monitor is never one for an agent.
const monitorRelayAgent = "monitor:"

// localMonitor is a monitor's path on the holder: it is the room's leg itself.
type localMonitor struct {
	held *held.Call
	m    *monitor
}

func (l *localMonitor) SendAudio(ulaw []byte) error { return l.held.AudioFrom(l.m, ulaw) }
func (l *localMonitor) setMode(mode string) {
	l.m.modeSet(mode, l.held.SetMonitorRole(l.m, monitorRole(mode)))
}
func (l *localMonitor) close() { l.held.RemoveLeg(l.m) }

// relayMonitor is a monitor's path through a relay to the holder (serveMonitorRelay).
type relayMonitor struct{ p *relay.Path }

func (r relayMonitor) SendAudio(ulaw []byte) error { return r.p.SendAudio(ulaw) }
func (r relayMonitor) setMode(mode string) {
	// A lost frame is a broken relay, which the relay's read reports (Moved).
	_ = r.p.SetMode(mode)
}
func (r relayMonitor) close() { r.p.Close() }

// serveMonitorRelay serves, on the holder, the relay of a monitor on another instance: its
// leg of the call's room is the relay, in the mode each mode frame asks for.
func (h *Hub) serveMonitorRelay(c echo.Context, held *held.Call, who string) error {
	if !held.AnsweredNow() {
		return c.NoContent(http.StatusConflict)
	}
	sink, err := relay.Accept(c.Response(), c.Request())
	if err != nil {
		return nil
	}
	defer sink.Close() //nolint:errcheck // the relay is over when this handler returns
	if err := held.AddLeg(sink, media.RoleListen); err != nil {
		sink.Ended(reasonGone)
		return nil
	}
	h.log.Info("agents: monitor relayed from another instance", "call", held.ID(), "who", who)
	sink.ServeMonitor(func(ulaw []byte) { _ = held.AudioFrom(sink, ulaw) }, func(mode string) {
		role := monitorRole(mode)
		if role == media.RoleUnknown {
			sink.Mode("", errors.New("the mode is listen, whisper or barge"))
			return
		}
		sink.Mode(mode, held.SetMonitorRole(sink, role))
	})
	held.RemoveLeg(sink)
	return nil
}
