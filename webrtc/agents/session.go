package agents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/gorilla/websocket"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/media"
)

// session is one logged-in agent on this instance: its signalling WebSocket (replaced when the
// browser reconnects), its one PeerConnection (renegotiated on each new offer and reused for
// every call), the call ringing for it and the call it is on. It outlives a dropped WebSocket
// by the presence TTL, so a browser that reconnects in time finds its call where it left it.
type session struct {
	hub   *Hub
	id    string
	agent agentdb.Agent

	mu      sync.Mutex
	conn    *signal.Conn     // nil while the browser is away
	pres    agentdb.Presence // the agent's presence as this session last wrote or read it
	tokenID string           // the token its browser signed in with (agentdb.Agent.TokenID)
	ringing *ringing
	call    *agentCall
	peer    *webrtc.Peer
	bridge  *webrtc.Bridge
	// Trickled candidates of a new peer wait until its answer has been sent.
	negotiating *webrtc.Peer
	heldCands   []string
	expiry      *time.Timer // while the browser is away
	wrapTimer   *time.Timer
	closed      bool
}

type ringing struct {
	call, from, to    string
	holder, holderURL string
	at                time.Time
	consultBy         string // rung to consult with this agent (a warm transfer)
}

// agentCall is the call a session is on.
type agentCall struct {
	id                string
	direction         call.Direction
	from, to          string
	state             call.State
	holder, holderURL string
	// consultBy is set on the call of an agent rung to consult with that agent: its media is a
	// leg of the call's room, not the call's own agent side (until the transfer completes).
	consultBy string
	path      callPath // nil until the media is joined, and while it is re-joined
	sink      *agentSink
	// rejoin is set while the session waits for the call's media to come back (its holder
	// died or stopped); joining is set while a path to it is being made.
	rejoin      *time.Timer
	joining     bool
	answeredAt  time.Time
	muted, held bool
	recording   string // the recording's state as the holder last said it
	// connected says the parties were ever connected: the agent wraps up after such a call.
	connected bool
	// before is the agent's state before the call, to return to after it.
	before agentdb.Availability
}

func (c *agentCall) view() signal.CallView {
	v := signal.CallView{CallID: c.id, State: c.state.String(), Direction: c.direction, From: c.from, To: c.to,
		Muted: c.muted, Held: c.held, Recording: c.recording}
	if !c.answeredAt.IsZero() {
		t := c.answeredAt
		v.AnsweredAt = &t
	}
	return v
}

// agentSink receives a call's carrier media on the agent's instance and hands it to the
// session's current bridge, which changes when the browser renegotiates.
type agentSink struct {
	s      *session
	call   string
	bridge atomic.Pointer[webrtc.Bridge]
}

func (k *agentSink) Audio(ulaw []byte) {
	if b := k.bridge.Load(); b != nil {
		b.Audio(ulaw)
	}
}

func (k *agentSink) DTMF(digit string) {
	if b := k.bridge.Load(); b != nil {
		b.DTMF(digit)
	}
}

func (k *agentSink) Ended(reason string) {
	k.s.hub.background(opTimeout, func(ctx context.Context) { k.s.callEnded(ctx, k.call, reason) })
}

func (k *agentSink) Moved() {
	k.s.hub.background(opTimeout, func(ctx context.Context) { k.s.mediaMoved(ctx, k.call, k) })
}

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// send queues one message for the browser, if it is connected. It never waits for the
// browser: a notice for one agent is never held up by another (see signal.Conn).
func (s *session) send(msg any) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.Send(msg)
	}
}

func (s *session) sendError(code, message, callID string) {
	s.send(signal.ErrorMessage{Type: signal.TypeError, Code: code, Message: message, CallID: callID})
}

// refused tells the browser a generic message with its code, and logs the detail (which may
// be pion's or the network's words, not for the browser) with the agent and session ids.
func (s *session) refused(code, message, callID string, err error) {
	level := slog.LevelInfo // the browser asked for something it may not have
	if code == signal.CodeMedia || code == signal.CodeUnavailable || code == signal.CodeCarrier {
		level = slog.LevelWarn // something failed on our side or beyond it
	}
	s.hub.log.Log(context.Background(), level, "agents: request refused", "agent", s.agent.ID, "session", s.id,
		"call", callID, "code", code, "err", err)
	s.sendError(code, message, callID)
}

// dtmfRefusal says, in the browser's words, why digits were not sent.
func dtmfRefusal(err error) string {
	switch {
	case errors.Is(err, media.ErrBadDigit):
		return "digits are 0-9, *, #, A-D"
	case errors.Is(err, media.ErrTooManyDigits):
		return "too many digits queued; wait for them to play"
	}
	return "the digits could not be sent"
}

func (s *session) sendAvailability() {
	s.mu.Lock()
	p := s.pres
	s.mu.Unlock()
	m := signal.AvailabilityMessage{Type: signal.TypeAvailability, State: p.State, Since: p.Since, Until: timePtr(p.Until)}
	if p.Next != agentdb.AvailabilityUnknown {
		m.Next = p.Next.String()
	}
	s.send(m)
}

func (s *session) welcome() {
	s.mu.Lock()
	p := s.pres
	m := signal.WelcomeMessage{Type: signal.TypeWelcome, Session: s.id, Agent: signal.AgentView{ID: s.agent.ID, Name: s.agent.Name},
		State: p.State, Since: p.Since, Until: timePtr(p.Until), ICEServers: s.hub.opts.ICEServers,
		Dispositions: s.hub.opts.Dispositions, MaxNotes: call.MaxNotes, Recording: s.hub.recordingMode()}
	if c := s.call; c != nil {
		v := c.view()
		m.Call = &v
	}
	if r := s.ringing; r != nil {
		m.Ringing = &signal.RingView{CallID: r.call, From: r.from, To: r.to,
			TimeoutMS: max(0, (s.hub.opts.RingTimeout - time.Since(r.at)).Milliseconds())}
	}
	s.mu.Unlock()
	s.send(m)
}

// serve reads the browser's messages from ws, whose sending side is conn, until the
// WebSocket closes. Silence (no message, no answer to our pings) for the presence TTL means
// the browser is gone.
func (s *session) serve(conn *signal.Conn, ws *websocket.Conn) {
	// The instance pings with every heartbeat (browsers answer WebSocket pings by
	// themselves), so a live browser that has nothing to say is not taken for a dead one.
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(s.hub.opts.PresenceTTL))
	})
	for {
		_ = ws.SetReadDeadline(time.Now().Add(s.hub.opts.PresenceTTL)) // a closed socket fails the read below
		var m signal.ClientMessage
		_, raw, err := ws.ReadMessage()
		if err != nil {
			s.detach(conn)
			conn.Close()
			return
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			s.sendError(signal.CodeBadRequest, "messages are JSON objects with a type", "")
			continue
		}
		s.handle(m)
	}
}

func (s *session) handle(m signal.ClientMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	switch m.Type {
	case signal.TypePing:
		s.send(map[string]string{"type": signal.TypePong})
	case signal.TypeOffer:
		s.offer(ctx, m.SDP)
	case signal.TypeCandidate:
		s.mu.Lock()
		p := s.negotiating
		if p == nil {
			p = s.peer
		}
		s.mu.Unlock()
		if p == nil || len(m.Candidate) == 0 || string(m.Candidate) == "null" {
			return
		}
		if err := p.AddICECandidate(string(m.Candidate)); err != nil {
			s.refused(signal.CodeBadRequest, "the candidate was not taken", "", err)
		}
	case signal.TypeDial:
		s.dialCommand(m.To)
	case signal.TypeAnswer:
		s.answer(ctx, m.CallID)
	case signal.TypeDecline:
		s.decline(ctx, m.CallID)
	case signal.TypeHangup:
		s.hangup(ctx, m.CallID)
	case signal.TypeMute, signal.TypeHold:
		s.setFlag(m.Type, m.On)
	case signal.TypeRecord:
		s.recordCommand(m.State)
	case signal.TypeDTMF:
		s.mu.Lock()
		b := s.bridge
		s.mu.Unlock()
		if b == nil {
			s.sendError(signal.CodeNoCall, "no call to send digits to", "")
			return
		}
		if err := b.SendDTMF(m.Digits); err != nil {
			s.refused(signal.CodeBadRequest, dtmfRefusal(err), "", err)
		}
	case signal.TypeAvailability:
		s.availability(ctx, m.State)
	case signal.TypeTransfer:
		s.transferCommand(m)
	case signal.TypeTransferComplete, signal.TypeTransferCancel, signal.TypeTransferConference:
		s.consultCommand(m)
	case signal.TypeWrapUp:
		s.wrapUp(ctx, m.CallID, m.Notes, m.Disposition)
	default:
		s.sendError(signal.CodeBadRequest, "unknown message type "+clip(m.Type, 32), "")
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// detach: the browser's WebSocket closed. The session waits for it to come back until the
// presence TTL; after that the agent is gone.
func (s *session) detach(conn *signal.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != conn || s.closed {
		return
	}
	s.conn = nil
	s.expiry = s.hub.after(s.hub.opts.PresenceTTL, s.expire)
}

func (s *session) expire() {
	s.mu.Lock()
	away := s.conn == nil && !s.closed
	s.mu.Unlock()
	if away {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		s.leave(ctx, held.ReasonAgentLost)
	}
}

// logout: the agent signed out. Its call, if any, is hung up and it is offline at once.
func (s *session) logout(ctx context.Context) {
	s.send(signal.AvailabilityMessage{Type: signal.TypeAvailability, State: agentdb.Offline, Since: time.Now()})
	s.leave(ctx, held.ReasonAgentHangup)
}

func (s *session) leave(ctx context.Context, reason string) {
	s.mu.Lock()
	r, c := s.ringing, s.call
	s.mu.Unlock()
	if r != nil {
		s.decline(ctx, r.call)
	}
	if c != nil {
		if c.path != nil {
			c.path.Hangup()
		} else {
			s.hub.hangupCall(c.id, c.holder)
		}
		s.callEnded(ctx, c.id, reason)
	}
	s.close()
	if err := s.hub.st.Disconnect(ctx, s.agent.ID, s.id); err != nil {
		s.hub.log.Warn("agents: presence not removed", "agent", s.agent.ID, "err", err)
	}
}

// replaced: the agent signed in on another instance (or another tab). The call, if any, stays
// up: the new session joins it.
func (s *session) replaced() {
	s.sendError(signal.CodeReplaced, "signed in elsewhere", "")
	s.close()
}

// close ends the session here without touching the agent's presence or ending its call.
func (s *session) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conn, c, b := s.conn, s.call, s.bridge
	peers := []*webrtc.Peer{s.peer, s.negotiating}
	s.conn, s.bridge, s.peer, s.negotiating = nil, nil, nil, nil
	for _, t := range []*time.Timer{s.expiry, s.wrapTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.mu.Unlock()
	s.hub.removeSession(s)
	if conn != nil {
		conn.Close() // after what was queued: the reason the session ends
	}
	if b != nil {
		b.End()
	}
	if c != nil && c.path != nil {
		c.path.Close()
	}
	if c != nil {
		s.mu.Lock()
		if c.rejoin != nil {
			c.rejoin.Stop()
			c.rejoin = nil
		}
		s.mu.Unlock()
	}
	for _, p := range peers {
		if p != nil {
			s.closePeer(p)
		}
	}
}

// shutdown closes the session as the instance stops.
func (s *session) shutdown() { s.close() }

// timePtr is t for a message's optional time: nil when t is zero.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
