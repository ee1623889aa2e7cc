package monitor

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

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/media"
)

// Monitor modes, as the console and the monitor socket name them.
const (
	Listen  = "listen"
	Whisper = "whisper"
	Barge   = "barge"
)

// Monitor socket messages, besides signal's offer, candidate, answer, ended and error.
const (
	typeMonitor    = "monitor"   // first client message: token, call_id, mode; then the server's state
	typeMonitorSet = "mode"      // client: switch to mode
	typeMonitorEnd = "stop"      // client: stop monitoring (closing the socket does too)
	CodeNotStaff   = "forbidden" // error code: a valid token whose role may not monitor
	ReasonStopped  = "stopped"   // ended: the supervisor stopped
	ReasonShutdown = "shutdown"  // ended: the instance is stopping
)

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
	case Listen:
		return media.RoleListen
	case Whisper:
		return media.RoleWhisper
	case Barge:
		return media.RoleTalk
	}
	return media.RoleUnknown
}

// monitor is one supervisor's monitoring of one call: a leg of the call's room (it is the
// leg's held.Sink when this instance holds the call, the relay's sink when another does)
// joined to the supervisor's PeerConnection by a bridge.
type monitor struct {
	hub    *Server
	who    string
	callID string
	conn   *signal.Conn

	bridge atomic.Pointer[webrtc.Bridge]

	mu      sync.Mutex
	path    monitorPath // nil while the monitoring follows its call to a new holder
	mode    string      // in force; "" until the holder took the first
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
	call, err := m.hub.host.Holder(ctx, m.callID)
	var path monitorPath
	switch {
	case err == nil:
		if err := call.AddLeg(m, media.RoleListen); err != nil {
			return signal.CodeNoCall, "the call cannot be monitored now: it is not connected to an agent"
		}
		path = &localMonitor{call: call, m: m}
	case errors.Is(err, held.ErrNotHere):
		o, oerr := m.hub.opts.Store.Offer(ctx, m.callID)
		if oerr != nil || o.State != agentdb.OfferAnswered || o.HolderURL == "" {
			return signal.CodeNoCall, "the call cannot be monitored now: it is not connected to an agent"
		}
		agent := RelayAgent + m.who
		p, derr := m.hub.host.DialRelay(ctx, o.HolderURL, m.callID, agent, m)
		var refused *relay.RefusedError
		switch {
		case errors.As(derr, &refused):
			return signal.CodeNoCall, "the call cannot be monitored now: it is not connected to an agent"
		case derr != nil:
			m.hub.opts.Log.Warn("agents: monitor relay to the call's holder failed", "call", m.callID, "holder", o.Holder, "err", derr)
			return signal.CodeMedia, "the call's audio could not be reached; try again"
		}
		path = relayMonitor{p}
	default:
		return signal.CodeNoCall, "no such live call"
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		path.close()
		return signal.CodeNoCall, "the monitoring has stopped"
	}
	m.path = path
	m.mu.Unlock()
	path.setMode(mode)
	return "", ""
}

// SendAudio sends the supervisor's frame into the call's room by the current path; while the
// monitoring follows its call to a new holder, the frame is dropped.
func (m *monitor) SendAudio(ulaw []byte) error {
	m.mu.Lock()
	path := m.path
	m.mu.Unlock()
	if path == nil {
		return nil
	}
	return path.SendAudio(ulaw)
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
			case <-m.hub.opts.Done:
				m.Ended(ReasonShutdown)
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
		m.hub.opts.Log.Warn("agents: monitor peer not made", "who", m.who, "err", err)
		m.sendError(signal.CodeMedia, "cannot create a peer connection")
		return
	}
	m.mu.Lock()
	m.peer = peer
	m.mu.Unlock()
	// Candidates go out after the answer: the browser cannot take them before.
	var cmu sync.Mutex
	var pending []string
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
			pending = append(pending, cand)
			return
		}
		sendCand(cand)
	})
	ctx, cancel := context.WithTimeout(context.Background(), held.OpTimeout)
	defer cancel()
	answer, err := peer.Answer(ctx, sdp)
	if err != nil {
		m.hub.opts.Log.Info("agents: monitor offer refused", "who", m.who, "err", err)
		m.sendError(signal.CodeMedia, "the offer was not accepted")
		return
	}
	// The bridge sends through the monitor, not its path: the path changes when the call's
	// media moves to another instance and the monitoring follows it.
	b := webrtc.NewBridge(m.callID, m, peer, webrtc.BridgeOptions{})
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
	for _, c := range pending {
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
	if path == nil {
		m.sendError(signal.CodeMedia, "the call's audio is moving to another instance; try again in a moment")
		return
	}
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
			m.hub.opts.Log.Debug("agents: monitor peer closed with an error", "who", m.who, "err", err)
		}
	}
	m.conn.Send(signal.EndedMessage{Type: signal.TypeEnded, CallID: m.callID, Reason: reason})
	m.conn.Close()
}

// The monitor as the room's held.Sink.

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

// Mode: the relay's answer to a mode asked for (relay.ModeSink).
func (m *monitor) Mode(mode string, err error) { m.modeSet(mode, err) }

// RelayAgent starts the agent a monitor's relay names: no agent id has a colon, so a relay
// token for a monitor is never one for an agent.
const RelayAgent = "monitor:"

// localMonitor is a monitor's path on the holder: it is the room's leg itself.
type localMonitor struct {
	call *held.Call
	m    *monitor
}

func (l *localMonitor) SendAudio(ulaw []byte) error { return l.call.AudioFrom(l.m, ulaw) }
func (l *localMonitor) setMode(mode string) {
	l.m.modeSet(mode, l.call.SetMonitorRole(l.m, monitorRole(mode)))
}
func (l *localMonitor) close() { l.call.RemoveLeg(l.m) }

// relayMonitor is a monitor's path through a relay to the holder (serveMonitorRelay).
type relayMonitor struct{ p *relay.Path }

func (r relayMonitor) SendAudio(ulaw []byte) error { return r.p.SendAudio(ulaw) }
func (r relayMonitor) setMode(mode string) {
	// A lost frame is a broken relay, which the relay's read reports (Moved).
	_ = r.p.SetMode(mode)
}
func (r relayMonitor) close() { r.p.Close() }

// ServeRelay serves, on the holder, the relay of a monitor on another instance (its relay
// names agent RelayAgent + who): its leg of the call's room is the relay, in the mode each
// mode frame asks for.
func (h *Server) ServeRelay(c echo.Context, call *held.Call, who string) error {
	if !call.AnsweredNow() {
		return c.NoContent(http.StatusConflict)
	}
	sink, err := relay.Accept(c.Response(), c.Request())
	if err != nil {
		return nil
	}
	defer sink.Close() //nolint:errcheck // the relay is over when this handler returns
	leg := relayLeg{sink}
	if err := call.AddLeg(leg, media.RoleListen); err != nil {
		sink.Ended(held.ReasonGone)
		return nil
	}
	h.opts.Log.Info("agents: monitor relayed from another instance", "call", call.ID(), "who", who)
	sink.ServeMonitor(func(ulaw []byte) { _ = call.AudioFrom(leg, ulaw) }, func(mode string) {
		role := monitorRole(mode)
		if role == media.RoleUnknown {
			sink.Mode("", errors.New("the mode is listen, whisper or barge"))
			return
		}
		sink.Mode(mode, call.SetMonitorRole(leg, role))
	})
	call.RemoveLeg(leg)
	return nil
}
