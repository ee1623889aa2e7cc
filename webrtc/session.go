package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// session is one logged-in agent on this instance: its signalling WebSocket (replaced when the
// browser reconnects), its one PeerConnection (renegotiated on each new offer and reused for
// every call), the call ringing for it and the call it is on. It outlives a dropped WebSocket
// by the presence TTL, so a browser that reconnects in time finds its call where it left it.
type session struct {
	hub   *Hub
	id    string
	agent store.Agent

	wmu sync.Mutex // serialises writes to the WebSocket

	mu      sync.Mutex
	conn    *websocket.Conn // nil while the browser is away
	pres    store.Presence  // the agent's presence as this session last wrote or read it
	ringing *ringing
	call    *agentCall
	peer    *Peer
	bridge  *Bridge
	// Trickled candidates of a new peer wait until its answer has been sent.
	negotiating *Peer
	heldCands   []string
	expiry      *time.Timer // while the browser is away
	wrapTimer   *time.Timer
	closed      bool
}

type ringing struct {
	call, from, to    string
	holder, holderURL string
	at                time.Time
}

// agentCall is the call a session is on.
type agentCall struct {
	id                string
	direction         call.Direction
	from, to          string
	state             call.State
	holder, holderURL string
	path              callPath // nil until the media is joined
	sink              *agentSink
	answeredAt        time.Time
	muted, held       bool
	// connected says the parties were ever connected: the agent wraps up after such a call.
	connected bool
	// before is the agent's state before the call, to return to after it.
	before store.Availability
}

func (c *agentCall) view() callView {
	v := callView{CallID: c.id, State: c.state.String(), Direction: c.direction, From: c.from, To: c.to,
		Muted: c.muted, Held: c.held}
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
	bridge atomic.Pointer[Bridge]
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

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// send writes one message to the browser, if it is connected.
func (s *session) send(msg any) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	conn.WriteJSON(msg)
}

func (s *session) sendError(code, message, callID string) {
	s.send(errorMessage{Type: msgError, Code: code, Message: message, CallID: callID})
}

func (s *session) sendAvailability() {
	s.mu.Lock()
	p := s.pres
	s.mu.Unlock()
	m := availabilityMessage{Type: msgAvailability, State: p.State, Since: p.Since, Until: timePtr(p.Until)}
	if p.Next != store.AvailabilityUnknown {
		m.Next = p.Next.String()
	}
	s.send(m)
}

func (s *session) welcome() {
	s.mu.Lock()
	p := s.pres
	m := welcomeMessage{Type: msgWelcome, Session: s.id, Agent: agentView{ID: s.agent.ID, Name: s.agent.Name},
		State: p.State, Since: p.Since, Until: timePtr(p.Until)}
	if c := s.call; c != nil {
		v := c.view()
		m.Call = &v
	}
	if r := s.ringing; r != nil {
		m.Ringing = &ringView{CallID: r.call, From: r.from, To: r.to,
			TimeoutMS: max(0, (s.hub.opts.RingTimeout - time.Since(r.at)).Milliseconds())}
	}
	s.mu.Unlock()
	s.send(m)
}

// serve reads the browser's messages until the WebSocket closes. Silence (no message, no
// answer to our pings) for the presence TTL means the browser is gone.
func (s *session) serve(conn *websocket.Conn) {
	// The instance pings with every heartbeat (browsers answer WebSocket pings by
	// themselves), so a live browser that has nothing to say is not taken for a dead one.
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(s.hub.opts.PresenceTTL))
	})
	for {
		conn.SetReadDeadline(time.Now().Add(s.hub.opts.PresenceTTL))
		var m clientMessage
		_, raw, err := conn.ReadMessage()
		if err != nil {
			s.detach(conn)
			return
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			s.sendError(codeBadRequest, "messages are JSON objects with a type", "")
			continue
		}
		s.handle(m)
	}
}

func (s *session) handle(m clientMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	switch m.Type {
	case msgPing:
		s.send(map[string]string{"type": msgPong})
	case msgOffer:
		s.offer(ctx, m.SDP)
	case msgCandidate:
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
			s.sendError(codeBadRequest, "candidate not taken: "+err.Error(), "")
		}
	case msgDial:
		s.dialCommand(m.To)
	case msgAnswer:
		s.answer(ctx, m.CallID)
	case msgDecline:
		s.decline(ctx, m.CallID)
	case msgHangup:
		s.hangup(ctx, m.CallID)
	case msgMute, msgHold:
		s.setFlag(m.Type, m.On)
	case msgDTMF:
		s.mu.Lock()
		b := s.bridge
		s.mu.Unlock()
		if b == nil {
			s.sendError(codeNoCall, "no call to send digits to", "")
			return
		}
		if err := b.SendDTMF(m.Digits); err != nil {
			s.sendError(codeBadRequest, err.Error(), "")
		}
	case msgAvailability:
		s.availability(ctx, m.State)
	default:
		s.sendError(codeBadRequest, "unknown message type "+clip(m.Type, 32), "")
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// offer (re)negotiates the session's PeerConnection: a new Peer answers the browser's offer
// and replaces the old one, and a call in progress moves to it with its mute and hold.
func (s *session) offer(ctx context.Context, sdp string) {
	peer, err := s.hub.opts.Engine.NewPeer(func(st PeerState) {
		if st == PeerStateFailed {
			s.sendError(codeMedia, "the audio connection failed", "")
		}
	})
	if err != nil {
		s.sendError(codeMedia, "cannot create a peer connection", "")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		peer.Close()
		return
	}
	s.negotiating, s.heldCands = peer, nil
	s.mu.Unlock()
	peer.OnLocalCandidate(func(cand string) { s.localCandidate(peer, cand) })
	answer, err := peer.Answer(ctx, sdp)
	if err != nil {
		s.mu.Lock()
		if s.negotiating == peer {
			s.negotiating = nil
		}
		s.mu.Unlock()
		peer.Close()
		s.sendError(codeMedia, "the offer was not accepted: "+err.Error(), "")
		return
	}

	s.mu.Lock()
	if s.closed || s.negotiating != peer {
		s.mu.Unlock()
		peer.Close()
		return
	}
	old, oldBridge := s.peer, s.bridge
	s.peer, s.bridge = peer, nil
	if c := s.call; c != nil && c.path != nil {
		s.bridge = s.newBridgeLocked(c)
		c.sink.bridge.Store(s.bridge)
	}
	s.mu.Unlock()
	if oldBridge != nil {
		oldBridge.End()
	}
	if old != nil {
		old.Close()
	}

	s.send(sdpMessage{Type: msgAnswer, SDP: answer})
	s.mu.Lock()
	held := s.heldCands
	s.heldCands = nil
	if s.negotiating == peer {
		s.negotiating = nil
	}
	s.mu.Unlock()
	for _, c := range held {
		s.sendCandidate(c)
	}
}

func (s *session) localCandidate(peer *Peer, cand string) {
	s.mu.Lock()
	switch {
	case s.negotiating == peer:
		s.heldCands = append(s.heldCands, cand)
		s.mu.Unlock()
		return
	case s.peer != peer:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.sendCandidate(cand)
}

func (s *session) sendCandidate(cand string) {
	raw := json.RawMessage("null") // end of candidates
	if cand != "" {
		raw = json.RawMessage(cand)
	}
	s.send(candidateMessage{Type: msgCandidate, Candidate: raw})
}

// newBridgeLocked joins call c's media path to the session's peer.
func (s *session) newBridgeLocked(c *agentCall) *Bridge {
	b := NewBridge(c.id, c.path, s.peer, BridgeOptions{OnEvent: func(e Event) {
		if e.Kind == EventCarrierDTMF {
			s.send(digitMessage{Type: msgDTMF, CallID: e.CallID, Digit: e.Digit})
		}
	}})
	b.SetMuted(c.muted)
	b.SetHeld(c.held)
	return b
}

// connectMedia joins call c's carrier media to the session: directly if this instance holds
// it, through a relay to its holder otherwise.
func (s *session) connectMedia(ctx context.Context, c *agentCall) {
	sink := &agentSink{s: s, call: c.id}
	var path callPath
	if c.holder == s.hub.opts.Instance {
		held, err := s.hub.holderFor(ctx, c.id)
		if err == nil {
			if err = held.answered(s.agent.ID); err == nil {
				err = held.attach(s.agent.ID, sink)
			}
		}
		if err != nil {
			s.hub.log.Info("agents: call media not joined", "call", c.id, "agent", s.agent.ID, "err", err)
			s.callEnded(ctx, c.id, reasonGone)
			return
		}
		path = &localPath{held: held, sink: sink}
	} else {
		p, err := s.hub.dialRelay(ctx, c.holderURL, c.id, s.agent.ID, sink)
		if err != nil {
			s.hub.log.Warn("agents: relay to the call's holder failed", "call", c.id, "holder", c.holder, "err", err)
			s.sendError(codeMedia, "the call's audio could not be reached", c.id)
			s.hub.hangupCall(c.id, c.holder)
			s.callEnded(ctx, c.id, reasonMediaLost)
			return
		}
		path = p
	}
	s.mu.Lock()
	if s.call != c || c.path != nil || s.closed {
		s.mu.Unlock()
		path.Close()
		return
	}
	c.path, c.sink = path, sink
	if s.peer != nil {
		s.bridge = s.newBridgeLocked(c)
		sink.bridge.Store(s.bridge)
	}
	s.mu.Unlock()
}

// ring shows a call offered to the agent.
func (s *session) ring(ctx context.Context, n notice) {
	s.mu.Lock()
	if s.closed || s.call != nil || (s.ringing != nil && s.ringing.call != n.Call) {
		s.mu.Unlock()
		// Reservations make this rare (a stale ring after a reconnect): give the call back.
		s.hub.st.WithdrawOffer(ctx, n.Call, s.agent.ID)
		s.hub.send(n.Holder, notice{Type: noticeDeclined, Call: n.Call, Agent: s.agent.ID})
		return
	}
	r := &ringing{call: n.Call, from: n.From, to: n.To, holder: n.Holder, holderURL: n.HolderURL, at: time.Now()}
	s.ringing = r
	s.mu.Unlock()
	s.send(ringingMessage{Type: msgRinging, ringView: ringView{CallID: r.call, From: r.from, To: r.to,
		TimeoutMS: s.hub.opts.RingTimeout.Milliseconds()}})
}

func (s *session) answer(ctx context.Context, callID string) {
	s.mu.Lock()
	r := s.ringing
	before := s.pres.State
	s.mu.Unlock()
	if r == nil || r.call != callID {
		s.sendError(codeNoCall, "no such call is ringing", callID)
		return
	}
	if err := s.hub.st.AnswerOffer(ctx, callID, s.agent.ID, s.id); err != nil {
		s.mu.Lock()
		if s.ringing == r {
			s.ringing = nil
		}
		s.mu.Unlock()
		switch {
		case errors.Is(err, store.ErrOfferGone):
			s.sendError(codeGone, "the call is no longer available", callID)
			s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reasonGone})
		case errors.Is(err, store.ErrReplaced):
			s.replaced()
		default:
			s.sendError(codeUnavailable, "the call could not be answered; try again", callID)
		}
		return
	}
	now := time.Now()
	c := &agentCall{id: callID, direction: call.Inbound, from: r.from, to: r.to, state: call.InProgress,
		holder: r.holder, holderURL: r.holderURL, answeredAt: now, connected: true, before: before}
	s.mu.Lock()
	s.ringing = nil
	s.call = c
	s.pres.State, s.pres.Call, s.pres.Since, s.pres.Until = store.Busy, callID, now, time.Time{}
	s.mu.Unlock()
	s.send(callMessage{Type: msgCall, callView: c.view()})
	s.sendAvailability()
	// The call's record says who took it.
	if _, err := s.hub.st.Apply(ctx, call.Event{ID: callID + ":agent:" + s.agent.ID, CallID: callID,
		Agent: s.agent.ID, Detail: "answered by agent " + s.agent.ID}); err != nil {
		s.hub.log.Warn("agents: answering agent not recorded", "call", callID, "err", err)
	}
	s.connectMedia(ctx, c)
}

func (s *session) decline(ctx context.Context, callID string) {
	s.mu.Lock()
	r := s.ringing
	if r == nil || r.call != callID {
		s.mu.Unlock()
		s.sendError(codeNoCall, "no such call is ringing", callID)
		return
	}
	s.ringing = nil
	s.mu.Unlock()
	if _, err := s.hub.st.WithdrawOffer(ctx, callID, s.agent.ID); err != nil {
		s.hub.log.Warn("agents: decline not stored", "call", callID, "err", err)
	}
	s.hub.send(r.holder, notice{Type: noticeDeclined, Call: callID, Agent: s.agent.ID})
	s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reasonDeclined})
}

func (s *session) hangup(ctx context.Context, callID string) {
	s.mu.Lock()
	if r := s.ringing; r != nil && r.call == callID {
		s.mu.Unlock()
		s.decline(ctx, callID)
		return
	}
	c := s.call
	s.mu.Unlock()
	if c == nil || (callID != "" && c.id != callID) {
		s.sendError(codeNoCall, "not on that call", callID)
		return
	}
	if c.path != nil {
		c.path.Hangup()
	} else {
		s.hub.hangupCall(c.id, c.holder)
	}
	s.callEnded(ctx, c.id, reasonAgentHangup)
}

func (s *session) setFlag(kind string, on bool) {
	s.mu.Lock()
	c, b := s.call, s.bridge
	if c == nil {
		s.mu.Unlock()
		s.sendError(codeNoCall, "no call to "+kind, "")
		return
	}
	if kind == msgMute {
		c.muted = on
	} else {
		c.held = on
	}
	v := c.view()
	s.mu.Unlock()
	if b != nil {
		if kind == msgMute {
			b.SetMuted(on)
		} else {
			b.SetHeld(on)
		}
	}
	s.send(callMessage{Type: msgCall, callView: v})
}

// dialCommand places a call from the softphone. Placing it can take a carrier round trip or
// two, so it runs apart from the read loop; the softphone hears of it through call messages.
func (s *session) dialCommand(to string) {
	if !validNumber(to) {
		s.sendError(codeBadRequest, "dial an E.164 number: + and country code, e.g. +15551234567", "")
		return
	}
	s.hub.background(2*opTimeout, func(ctx context.Context) {
		if _, err := s.hub.dial(ctx, s.agent.ID, s, to); err != nil {
			code, msg := dialErrorCode(err)
			s.sendError(code, msg, "")
		}
	})
}

func dialErrorCode(err error) (code, message string) {
	var pe *PlaceError
	switch {
	case errors.Is(err, store.ErrAgentBusy):
		return codeBusy, "you are already on a call"
	case errors.Is(err, store.ErrAgentRinging):
		return codeRinging, "a call is ringing: answer or decline it first"
	case errors.Is(err, store.ErrAgentOffline), errors.Is(err, store.ErrReplaced):
		return codeReplaced, "this session is no longer signed in"
	case errors.As(err, &pe):
		return codeCarrier, "the call could not be placed: " + pe.Reason
	case errors.Is(err, ErrBadNumber):
		return codeBadRequest, err.Error()
	}
	return codeCarrier, "the call could not be placed"
}

// startCall makes c the session's call, as placed by the agent (here or through the API).
func (s *session) startCall(ctx context.Context, c *agentCall) {
	s.mu.Lock()
	if s.call != nil && s.call.id == c.id {
		s.mu.Unlock()
		return
	}
	c.before = s.pres.State
	if c.before == store.Busy {
		c.before = store.Available
	}
	s.call = c
	s.pres.State, s.pres.Call, s.pres.Since, s.pres.Until = store.Busy, c.id, time.Now(), time.Time{}
	s.mu.Unlock()
	s.send(callMessage{Type: msgCall, callView: c.view()})
	s.sendAvailability()
	s.connectMedia(ctx, c)
}

// dialed: the agent placed a call through the API on another instance.
func (s *session) dialed(ctx context.Context, callID, to string) {
	o, err := s.hub.st.Offer(ctx, callID)
	if err != nil || o.Agent != s.agent.ID {
		return
	}
	if _, err := s.hub.adopt(o); err != nil {
		return
	}
	s.startCall(ctx, &agentCall{id: callID, direction: call.Outbound, to: to, state: call.Queued,
		holder: o.Holder, holderURL: o.HolderURL})
}

// mediaReady: the holder of the session's call has its carrier media and no path to us.
func (s *session) mediaReady(ctx context.Context, callID, holder, holderURL string) {
	s.mu.Lock()
	c := s.call
	ok := c != nil && c.id == callID && c.path == nil
	if ok {
		c.holder, c.holderURL = holder, holderURL
	}
	s.mu.Unlock()
	if ok {
		s.connectMedia(ctx, c)
	}
}

// callState shows a change the carrier reported for the session's call. A call that ends
// before its media ever flowed (busy, no answer) ends here.
func (s *session) callState(callID string, st call.State) {
	s.mu.Lock()
	c := s.call
	if c == nil || c.id != callID || !call.Advances(c.state, st) {
		s.mu.Unlock()
		return
	}
	reason := st.String()
	if st == call.Failed && c.state == call.Queued {
		reason = reasonCarrier // no carrier took it: the placement failed
	}
	c.state = st
	if st == call.InProgress {
		c.connected = true
		if c.answeredAt.IsZero() {
			c.answeredAt = time.Now()
		}
	}
	v := c.view()
	s.mu.Unlock()
	s.send(callMessage{Type: msgCall, callView: v})
	if st.Terminal() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		s.callEnded(ctx, callID, reason)
	}
}

// callEnded finishes the ringing call or the call the session is on, once; the agent then
// wraps up after a connected call and goes back to its state before the call otherwise.
func (s *session) callEnded(ctx context.Context, callID, reason string) {
	s.mu.Lock()
	if r := s.ringing; r != nil && r.call == callID {
		s.ringing = nil
		s.mu.Unlock()
		s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reason})
		if reason == reasonMissed {
			// Nobody answered: the agent is evidently away from the desk.
			s.changeState(ctx, store.Away, time.Time{}, "")
		}
		return
	}
	c := s.call
	if c == nil || c.id != callID {
		s.mu.Unlock()
		return
	}
	s.call = nil
	b := s.bridge
	s.bridge = nil
	next := s.pres.Next
	s.mu.Unlock()
	if b != nil {
		b.End()
	}
	if c.path != nil {
		c.path.Close()
	}
	s.send(endedMessage{Type: msgEnded, CallID: callID, Reason: reason})
	if next == store.AvailabilityUnknown {
		next = c.before
	}
	if next != store.Away {
		next = store.Available
	}
	if c.connected {
		until := time.Now().Add(s.hub.opts.WrapUp)
		s.changeState(ctx, store.WrapUp, until, callID)
		s.mu.Lock()
		if s.wrapTimer != nil {
			s.wrapTimer.Stop()
		}
		if !s.closed {
			s.wrapTimer = s.hub.after(s.hub.opts.WrapUp, func() { s.wrapUpDone(next) })
		}
		s.mu.Unlock()
		return
	}
	s.changeState(ctx, next, time.Time{}, "")
}

func (s *session) wrapUpDone(next store.Availability) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.mu.Lock()
	wrapping := s.pres.State == store.WrapUp
	s.mu.Unlock()
	if wrapping {
		s.changeState(ctx, next, time.Time{}, "")
	}
}

// changeState moves the agent from the state the session knows to state. If another instance
// changed it meanwhile, the session takes the real state instead.
func (s *session) changeState(ctx context.Context, state store.Availability, until time.Time, callID string) {
	s.mu.Lock()
	cur := s.pres
	next := cur
	next.State, next.Since, next.Until, next.Call = state, time.Now(), until, callID
	if state != store.WrapUp && state != store.Busy {
		next.Next = store.AvailabilityUnknown
	}
	s.mu.Unlock()
	err := s.hub.st.SetState(ctx, s.id, cur.State, cur.Call, next, s.hub.opts.PresenceTTL)
	var conflict *store.StateConflict
	switch {
	case errors.As(err, &conflict):
		s.mu.Lock()
		s.pres.State, s.pres.Call = conflict.State, conflict.Call
		s.mu.Unlock()
	case errors.Is(err, store.ErrReplaced):
		s.replaced()
		return
	case errors.Is(err, store.ErrPresenceGone):
		s.mu.Lock()
		s.pres = next
		s.mu.Unlock()
		s.restore(ctx)
	case err != nil:
		s.hub.log.Warn("agents: state not stored", "agent", s.agent.ID, "state", state, "err", err)
		return
	default:
		s.mu.Lock()
		s.pres = next
		s.mu.Unlock()
	}
	s.sendAvailability()
	if state == store.Available {
		s.hub.st.NotifyAgentFree(ctx, s.agent.ID)
	}
}

// availability is the agent's own choice of state: available, away, or offline (log out).
// On a call it is taken after the call; in wrap-up it ends the wrap-up now.
func (s *session) availability(ctx context.Context, name string) {
	want, err := store.ParseAvailability(name)
	if err != nil || (want != store.Available && want != store.Away && want != store.Offline) {
		s.sendError(codeBadRequest, "availability is available, away or offline", "")
		return
	}
	if want == store.Offline {
		s.logout(ctx)
		return
	}
	s.mu.Lock()
	cur := s.pres
	if s.wrapTimer != nil && cur.State == store.WrapUp {
		s.wrapTimer.Stop()
	}
	s.mu.Unlock()
	if cur.State == store.Busy {
		next := cur
		next.Next = want
		if err := s.hub.st.SetState(ctx, s.id, cur.State, cur.Call, next, s.hub.opts.PresenceTTL); err == nil {
			s.mu.Lock()
			s.pres.Next = want
			s.mu.Unlock()
		}
		s.sendAvailability()
		return
	}
	s.changeState(ctx, want, time.Time{}, "")
}

// heartbeat keeps the agent's presence alive while the browser is connected.
func (s *session) heartbeat(ctx context.Context) {
	s.mu.Lock()
	conn := s.conn
	live := conn != nil && !s.closed
	s.mu.Unlock()
	if !live {
		return // let the presence lapse unless the browser comes back
	}
	conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
	switch err := s.hub.st.Heartbeat(ctx, s.agent.ID, s.id, s.hub.opts.PresenceTTL); {
	case errors.Is(err, store.ErrReplaced):
		s.replaced()
	case errors.Is(err, store.ErrPresenceGone):
		s.restore(ctx)
	case err != nil:
		s.hub.log.Warn("agents: heartbeat failed", "agent", s.agent.ID, "err", err)
	default:
		s.settle(ctx)
	}
}

// settle repairs what a state change that could not be stored left behind: a session with no
// call whose presence still says busy (its call ended while Redis was away, so the wrap-up
// was never written), or a wrap-up past its end (its end was not written). Without it the
// agent stays busy, and is offered no call, until it signs out. The incident drill found it
// (cmd/incidentdrill: Redis stopped while agents were on calls). Answering and dialling set
// the call and the busy state together, so an idle session that believes it is busy is
// always such a leftover.
func (s *session) settle(ctx context.Context) {
	s.mu.Lock()
	idle := s.call == nil && s.ringing == nil && !s.closed
	p := s.pres
	s.mu.Unlock()
	next := store.Available
	if p.Next == store.Away {
		next = store.Away
	}
	switch {
	case !idle:
	case p.State == store.Busy, p.State == store.WrapUp && !p.Until.IsZero() && time.Now().After(p.Until):
		s.hub.log.Info("agents: state repaired after a change that was not stored", "agent", s.agent.ID,
			"was", p.State, "call", p.Call, "now", next)
		s.changeState(ctx, next, time.Time{}, "")
	}
}

// restore writes the session's presence back after it expired while the session lived.
func (s *session) restore(ctx context.Context) {
	s.mu.Lock()
	p := s.pres
	s.mu.Unlock()
	if _, err := s.hub.st.Connect(ctx, p, s.hub.opts.PresenceTTL); err != nil {
		s.hub.log.Warn("agents: presence not restored", "agent", s.agent.ID, "err", err)
	}
}

// detach: the browser's WebSocket closed. The session waits for it to come back until the
// presence TTL; after that the agent is gone.
func (s *session) detach(conn *websocket.Conn) {
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
		s.leave(ctx, reasonAgentLost)
	}
}

// logout: the agent signed out. Its call, if any, is hung up and it is offline at once.
func (s *session) logout(ctx context.Context) {
	s.send(availabilityMessage{Type: msgAvailability, State: store.Offline, Since: time.Now()})
	s.leave(ctx, reasonAgentHangup)
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
	s.sendError(codeReplaced, "signed in elsewhere", "")
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
	peers := []*Peer{s.peer, s.negotiating}
	s.conn, s.bridge, s.peer, s.negotiating = nil, nil, nil, nil
	for _, t := range []*time.Timer{s.expiry, s.wrapTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.mu.Unlock()
	s.hub.removeSession(s)
	if conn != nil {
		s.wmu.Lock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		s.wmu.Unlock()
		conn.Close()
	}
	if b != nil {
		b.End()
	}
	if c != nil && c.path != nil {
		c.path.Close()
	}
	for _, p := range peers {
		if p != nil {
			p.Close()
		}
	}
}

// shutdown closes the session as the instance stops.
func (s *session) shutdown() { s.close() }
