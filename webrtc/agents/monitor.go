package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc"
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
	typeMonitor    = "monitor"     // first client message: token, call_id, mode; then the server's state
	typeMonitorSet = "mode"        // client: switch to mode
	typeMonitorEnd = "stop"        // client: stop monitoring (closing the socket does too)
	codeNotStaff   = "forbidden"   // a valid token whose role may not monitor
	codeElsewhere  = "elsewhere"   // the call's media is held by another instance
	reasonStopped  = "stopped"     // the supervisor stopped
	reasonMonMoved = "media-moved" // the call's media moved to another instance
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
		held, err := h.holderFor(ctx, first.CallID)
		switch {
		case errors.Is(err, errNotHere):
			return reject(codeElsewhere, "the call's audio is on another instance; monitor it from that instance")
		case err != nil:
			return reject(signal.CodeNoCall, "no such live call")
		}
		conn, ok := h.newAgentConn(ws, who)
		if !ok {
			return nil // shutting down
		}
		defer func() {
			conn.Close()
			<-conn.Done() // the last words (an error, ended) go out within the farewell's bound
		}()
		m := &monitor{hub: h, who: who, held: held, conn: conn}
		if err := m.start(first.Mode); err != nil {
			conn.Send(signal.ErrorMessage{Type: signal.TypeError, Code: signal.CodeNoCall, Message: err.Error(), CallID: held.id})
			return nil
		}
		h.audit(who, held.id, first.Mode, true)
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
// leg's mediaSink) joined to the supervisor's PeerConnection by a bridge.
type monitor struct {
	hub  *Hub
	who  string
	held *heldCall
	conn *signal.Conn

	bridge atomic.Pointer[webrtc.Bridge]

	mu      sync.Mutex
	mode    string
	peer    *webrtc.Peer
	stopped bool
}

// start joins the monitor's leg to the call's room in mode.
func (m *monitor) start(mode string) error {
	if err := m.held.addLeg(m, media.RoleListen); err != nil {
		return fmt.Errorf("the call cannot be monitored now: %w", err)
	}
	if err := m.held.setMonitorRole(m, monitorRole(mode)); err != nil {
		m.held.removeLeg(m)
		return err
	}
	m.mu.Lock()
	m.mode = mode
	m.mu.Unlock()
	m.conn.Send(monitorMessage{Type: typeMonitor, CallID: m.held.id, Mode: mode, ICEServers: m.hub.opts.ICEServers})
	return nil
}

// serve reads the supervisor's messages until the socket closes or monitoring stops.
func (m *monitor) serve(ws *websocket.Conn) {
	ttl := m.hub.opts.PresenceTTL
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(ttl)) })
	ping := time.NewTicker(max(ttl/3, 100*time.Millisecond))
	defer ping.Stop()
	// The pinger's goroutine is this handler's: it ends with the read loop below.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
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
	m.conn.Send(signal.ErrorMessage{Type: signal.TypeError, Code: code, Message: message, CallID: m.held.id})
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
	b := webrtc.NewBridge(m.held.id, monitorLeg{m}, peer, webrtc.BridgeOptions{})
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

// setMode switches the monitor's role in the room.
func (m *monitor) setMode(mode string) {
	role := monitorRole(mode)
	if role == media.RoleUnknown {
		m.sendError(signal.CodeBadRequest, "the mode is listen, whisper or barge")
		return
	}
	if err := m.held.setMonitorRole(m, role); err != nil {
		m.sendError(signal.CodeNoCall, err.Error())
		return
	}
	m.mu.Lock()
	changed := m.mode != mode
	m.mode = mode
	m.mu.Unlock()
	if changed {
		m.hub.audit(m.who, m.held.id, mode, false)
	}
	m.conn.Send(monitorMessage{Type: typeMonitor, CallID: m.held.id, Mode: mode})
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
	peer := m.peer
	m.mu.Unlock()
	m.held.removeLeg(m)
	if b := m.bridge.Swap(nil); b != nil {
		b.End()
	}
	if peer != nil {
		if err := peer.Close(); err != nil {
			m.hub.log.Debug("agents: monitor peer closed with an error", "who", m.who, "err", err)
		}
	}
	m.conn.Send(signal.EndedMessage{Type: signal.TypeEnded, CallID: m.held.id, Reason: reason})
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
	m.conn.Send(signal.EndedMessage{Type: signal.TypeEnded, CallID: m.held.id, Reason: reason})
	m.conn.Close()
}

// Moved: the call's media went to another instance, and monitoring does not follow it.
func (m *monitor) Moved() { m.Ended(reasonMonMoved) }

// monitorLeg is the leg of a monitor's bridge: the supervisor's audio goes into the room.
type monitorLeg struct{ m *monitor }

func (l monitorLeg) SendAudio(ulaw []byte) error { return l.m.held.audioFrom(l.m, ulaw) }

// errNotMonitoring: the call has no room with this monitor in it (it ended, or moved).
var errNotMonitoring = errors.New("the call is no longer monitored here")

// setMonitorRole gives sink, a monitor's leg in the call's room, role; a whisper is heard by
// the call's agent. It fails when the call's agent is not on its audio (a whisper needs it).
func (c *heldCall) setMonitorRole(sink mediaSink, role media.Role) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.room.Load()
	if c.phase != phaseAnswered || r == nil {
		return errNotMonitoring
	}
	agent := c.sink.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	slot, ok := r.legs[sink]
	if !ok {
		return errNotMonitoring
	}
	target := -1
	if role == media.RoleWhisper {
		t, ok := -1, false
		if agent != nil {
			t, ok = r.legs[agent.s]
		}
		if !ok {
			return errors.New("the agent is not on the call's audio now: whisper when it is back")
		}
		target = t
	}
	if !r.mixer.SetRole(slot, role, target) {
		return errNotMonitoring
	}
	return nil
}
