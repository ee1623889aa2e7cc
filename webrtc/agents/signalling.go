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
)

// helloTimeout is how long a new WebSocket has to say who it is.
const helloTimeout = 10 * time.Second

var signalUpgrader = websocket.Upgrader{
	ReadBufferSize: 4096, WriteBufferSize: 4096,
	// The Origin is checked by handleSignal itself, against the allowed origins (origin.go).
	CheckOrigin: func(*http.Request) bool { return true },
}

// handleSignal serves an agent's signalling WebSocket: the first message must be hello with
// the agent's token (browsers cannot put headers on a WebSocket, and a token in the URL would
// end up in logs); then the session takes over.
func (h *Hub) handleSignal() echo.HandlerFunc {
	return func(c echo.Context) error {
		if !h.origins.allow(c.Request()) {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "origin not allowed"})
		}
		conn, err := signalUpgrader.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		defer conn.Close() //nolint:errcheck // the session is over when this handler returns
		conn.SetReadLimit(maxClientMessage)
		_ = conn.SetReadDeadline(time.Now().Add(helloTimeout)) // a closed socket fails the read below
		var hello clientMessage
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return nil
		}
		reject := func(code, message string) error {
			// The socket closes after the refusal whether or not the browser got it.
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = conn.WriteJSON(errorMessage{Type: msgError, Code: code, Message: message})
			return nil
		}
		if json.Unmarshal(raw, &hello) != nil || hello.Type != msgHello {
			return reject(codeUnauthorized, "say hello with your token first")
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), opTimeout)
		agent, err := h.st.AuthenticateAgent(ctx, hello.Token)
		if err != nil {
			cancel()
			if errors.Is(err, agentdb.ErrUnauthorized) {
				return reject(codeUnauthorized, "that token is not valid; ask an admin for yours")
			}
			return reject(codeUnavailable, "cannot check the token now; try again")
		}
		out, ok := h.newAgentConn(conn, agent.ID)
		if !ok {
			cancel()
			return nil // shutting down
		}
		defer out.close()
		s, err := h.login(ctx, agent, out)
		cancel()
		if err != nil {
			h.log.Warn("agents: login failed", "agent", agent.ID, "err", err)
			out.send(errorMessage{Type: msgError, Code: codeUnavailable, Message: "cannot sign in now; try again"})
			out.close()
			<-out.done // within agentFarewellTimeout
			return nil
		}
		s.welcome()
		s.serve(out)
		return nil
	}
}

// login attaches conn to the agent's session on this instance, creating it if needed. A new
// session takes the agent's presence over: if the agent was still online elsewhere (another
// instance, within the presence TTL), it keeps its state and call, and the old session is
// told to go.
func (h *Hub) login(ctx context.Context, agent agentdb.Agent, conn *agentConn) (*session, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("agents: shutting down")
	}
	s := h.sessions[agent.ID]
	if s != nil {
		// The same browser reconnecting, or another tab: the newest connection wins.
		s.mu.Lock()
		old := s.conn
		s.conn = conn
		s.tokenID = agent.TokenID
		if s.expiry != nil {
			s.expiry.Stop()
			s.expiry = nil
		}
		p := s.pres
		s.mu.Unlock()
		h.mu.Unlock()
		if old != nil {
			old.send(errorMessage{Type: msgError, Code: codeReplaced, Message: "signed in in another window"})
			old.close()
		}
		if _, err := h.st.Connect(ctx, p, h.opts.PresenceTTL); err != nil {
			return nil, err
		}
		return s, nil
	}
	s = &session{hub: h, id: newSessionID(), agent: agent, conn: conn, tokenID: agent.TokenID}
	h.sessions[agent.ID] = s
	h.mu.Unlock()

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
