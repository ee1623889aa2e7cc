package agents

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// helloTimeout is how long a new WebSocket has to say who it is.
const helloTimeout = 10 * time.Second

var signalUpgrader = websocket.Upgrader{
	ReadBufferSize: 4096, WriteBufferSize: 4096,
	// The Origin is checked by handleSignal itself, against the allowed origins (signal.Origins).
	CheckOrigin: func(*http.Request) bool { return true },
}

// handleSignal serves an agent's signalling WebSocket: the first message must be hello with
// the agent's token (browsers cannot put headers on a WebSocket, and a token in the URL would
// end up in logs); then the session takes over.
func (h *Hub) handleSignal() echo.HandlerFunc {
	return func(c echo.Context) error {
		if !h.origins.Allow(c.Request()) {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "origin not allowed"})
		}
		conn, err := signalUpgrader.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		defer conn.Close() //nolint:errcheck // the session is over when this handler returns
		conn.SetReadLimit(signal.MaxClientMessage)
		_ = conn.SetReadDeadline(time.Now().Add(helloTimeout)) // a closed socket fails the read below
		var hello signal.ClientMessage
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return nil
		}
		reject := func(code, message string) error {
			// The socket closes after the refusal whether or not the browser got it.
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = conn.WriteJSON(signal.ErrorMessage{Type: signal.TypeError, Code: code, Message: message})
			return nil
		}
		if json.Unmarshal(raw, &hello) != nil || hello.Type != signal.TypeHello {
			return reject(signal.CodeUnauthorized, "say hello with your token first")
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), opTimeout)
		agent, err := h.st.AuthenticateAgent(ctx, hello.Token)
		if err != nil {
			cancel()
			if errors.Is(err, agentdb.ErrUnauthorized) {
				return reject(signal.CodeUnauthorized, "that token is not valid; ask an admin for yours")
			}
			return reject(signal.CodeUnavailable, "cannot check the token now; try again")
		}
		out, ok := h.newAgentConn(conn, agent.ID)
		if !ok {
			cancel()
			return nil // shutting down
		}
		defer out.Close()
		s, err := h.login(ctx, agent, out)
		cancel()
		if err != nil {
			h.log.Warn("agents: login failed", "agent", agent.ID, "err", err)
			out.Send(signal.ErrorMessage{Type: signal.TypeError, Code: signal.CodeUnavailable, Message: "cannot sign in now; try again"})
			out.Close()
			<-out.Done() // within the farewell's bound (signal.Conn.Close)
			return nil
		}
		s.welcome()
		s.serve(out, conn)
		return nil
	}
}

// newAgentConn starts the writer of agent's socket ws on a goroutine owned by h; false if h
// has shut down (the socket is then closed).
func (h *Hub) newAgentConn(ws *websocket.Conn, agent string) (*signal.Conn, bool) {
	c := signal.NewConn(ws, h.log.With("agent", agent))
	if !h.enter() {
		c.Discard() // the hub is shutting down: nothing more to say to this socket
		return c, false
	}
	go func() {
		defer h.wg.Done()
		if err := c.Write(); err != nil {
			h.log.Info("agents: softphone socket closed: a write failed or took too long", "agent", agent, "err", err)
		}
	}()
	return c, true
}

// login attaches conn to the agent's session on this instance, creating it if needed. A new
// session takes the agent's presence over: if the agent was still online elsewhere (another
// instance, within the presence TTL), it keeps its state and call, and the old session is
// told to go.
func (h *Hub) login(ctx context.Context, agent agentdb.Agent, conn *signal.Conn) (*session, error) {
	for {
		s, fresh, err := h.sessionFor(agent, conn)
		switch {
		case err != nil:
			return nil, err
		case fresh:
			return h.startSession(ctx, s, agent)
		}
		// The same browser reconnecting, or another tab: the newest connection wins.
		s.mu.Lock()
		if s.closed {
			// It ended between the lookup and now, and left the map: start a new one.
			s.mu.Unlock()
			continue
		}
		old := s.conn
		s.conn = conn
		s.tokenID = agent.TokenID
		if s.expiry != nil {
			s.expiry.Stop()
			s.expiry = nil
		}
		p := s.pres
		s.mu.Unlock()
		if old != nil {
			old.Send(signal.ErrorMessage{Type: signal.TypeError, Code: signal.CodeReplaced, Message: "signed in in another window"})
			old.Close()
		}
		if _, err := h.st.Connect(ctx, p, h.opts.PresenceTTL); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// sessionFor returns the agent's session here, or registers a new one for conn (fresh).
func (h *Hub) sessionFor(agent agentdb.Agent, conn *signal.Conn) (s *session, fresh bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false, errors.New("agents: shutting down")
	}
	if s := h.sessions[agent.ID]; s != nil {
		return s, false, nil
	}
	s = &session{hub: h, id: newSessionID(), agent: agent, conn: conn, tokenID: agent.TokenID}
	h.sessions[agent.ID] = s
	return s, true, nil
}

// startSession takes the agent's presence over for a session just registered.
func (h *Hub) startSession(ctx context.Context, s *session, agent agentdb.Agent) (*session, error) {

	now := time.Now()
	fresh := agentdb.Presence{Agent: agent.ID, State: agentdb.Available, Since: now, Session: s.id,
		Instance: h.opts.Instance, URL: h.opts.PublicURL}
	prev, err := h.st.Connect(ctx, fresh, h.opts.PresenceTTL)
	if err != nil {
		h.removeSession(s)
		return nil, err
	}
	s.pres = fresh
	if prev.State != agentdb.Offline && prev.State != agentdb.AvailabilityUnknown {
		s.pres.State, s.pres.Since, s.pres.Until, s.pres.Call, s.pres.Next = prev.State, prev.Since, prev.Until, prev.Call, prev.Next
		if prev.Session != "" && prev.Session != s.id {
			h.send(prev.Instance, notice{Type: noticeKick, Agent: agent.ID, Session: prev.Session})
		}
		h.resume(ctx, s, prev)
	} else if err := h.st.NotifyAgentFree(ctx, agent.ID); err != nil {
		h.log.Warn("agents: free agent not announced", "agent", agent.ID, "err", err)
	}
	return s, nil
}

// resume picks up, in a new session, the call and ringing the agent had in its old one.
func (h *Hub) resume(ctx context.Context, s *session, prev agentdb.Presence) {
	if prev.State == agentdb.Busy && prev.Call != "" {
		o, err := h.st.Offer(ctx, prev.Call)
		if err == nil && o.State == agentdb.OfferAnswered && o.Agent == s.agent.ID {
			c := &agentCall{id: o.Call, direction: o.Direction, from: o.From, to: o.To, state: call.InProgress,
				holder: o.Holder, holderURL: o.HolderURL, connected: true, before: agentdb.Available}
			if cl, err := h.st.Call(ctx, o.Call); err == nil {
				c.state = cl.State
				c.answeredAt = cl.CreatedAt
			}
			s.mu.Lock()
			s.call = c
			s.mu.Unlock()
			h.background(opTimeout, func(ctx context.Context) { s.connectMedia(ctx, c) })
		} else {
			// The call ended while the agent was away.
			h.background(opTimeout, func(ctx context.Context) {
				s.changeState(ctx, agentdb.Available, time.Time{}, "")
			})
		}
	}
	if p, err := h.st.Presence(ctx, s.agent.ID); err == nil && p.Ringing != "" {
		if o, err := h.st.Offer(ctx, p.Ringing); err == nil && o.State == agentdb.OfferRinging && o.Agent == s.agent.ID {
			s.mu.Lock()
			s.ringing = &ringing{call: o.Call, from: o.From, to: o.To, holder: o.Holder, holderURL: o.HolderURL, at: time.Now()}
			s.mu.Unlock()
		}
	}
}

func (h *Hub) removeSession(s *session) {
	h.mu.Lock()
	if h.sessions[s.agent.ID] == s {
		delete(h.sessions, s.agent.ID)
	}
	h.mu.Unlock()
}
