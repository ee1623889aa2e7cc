package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
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

// Host is what monitoring needs from the agents' hub.
type Host interface {
	// Holder returns the call whose media this instance holds; held.ErrNotHere when another
	// instance holds it.
	Holder(ctx context.Context, callID string) (*held.Call, error)
	// DialRelay opens a relay to the holder at holderURL, for agent (RelayAgent and the
	// staff's name), its frames to sink, read on a goroutine the host owns.
	DialRelay(ctx context.Context, holderURL, callID, agent string, sink held.Sink) (*relay.Path, error)
	// NewConn starts the writer of socket ws on a goroutine the host owns; false if the host
	// has shut down (the socket is then closed).
	NewConn(ws *websocket.Conn, who string) (*signal.Conn, bool)
	// Background runs f on a goroutine the host owns, with a context that ends after timeout
	// or when the host shuts down.
	Background(timeout time.Duration, f func(ctx context.Context))
}

// Options are the monitoring's settings, the hub's (agents.HubOptions).
type Options struct {
	Store  *agentdb.Store
	Engine *webrtc.Engine
	// Staff checks the token a supervisor's console monitors a call with; nil: nobody may.
	Staff StaffAuthenticator
	// Origins are the browser origins whose pages may open a monitor socket.
	Origins signal.Origins
	// ICEServers go to staff with the first state, for their PeerConnection.
	ICEServers json.RawMessage
	// PresenceTTL bounds the socket's silence (pings keep it up).
	PresenceTTL time.Duration
	Log         *slog.Logger
	// Done is closed when the host shuts down: monitoring ends then.
	Done <-chan struct{}
}

// Server serves the monitoring of the calls one instance holds or reaches.
type Server struct {
	host Host
	opts Options
}

// New returns the monitoring server of host.
func New(host Host, opts Options) *Server { return &Server{host: host, opts: opts} }

// helloTimeout is how long a new monitor socket has to say who it is.
const helloTimeout = 10 * time.Second

var upgrader = websocket.Upgrader{
	ReadBufferSize: 4096, WriteBufferSize: 4096,
	// The Origin is checked by Handle itself, against the allowed origins (signal.Origins).
	CheckOrigin: func(*http.Request) bool { return true },
}

// ErrNotStaff is what Options.Staff returns for a valid token whose role may not monitor
// (an agent's).
var ErrNotStaff = errors.New("agents: this token may not monitor calls")

// StaffAuthenticator says who a staff token is ("admin", "supervisor:<id>"), for audits and
// logs; agentdb.ErrUnauthorized for a token of nobody, ErrNotStaff for an agent's.
type StaffAuthenticator func(ctx context.Context, token string) (who string, err error)

// Handle is a supervisor's monitor WebSocket (docs/agents.md, Monitoring): the first message
// names the staff token, the call and the mode; never the URL, which ends up in logs.
func (h *Server) Handle() echo.HandlerFunc {
	return func(c echo.Context) error {
		if !h.opts.Origins.Allow(c.Request()) {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "origin not allowed"})
		}
		ws, err := upgrader.Upgrade(c.Response(), c.Request(), nil)
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
		ctx, cancel := context.WithTimeout(c.Request().Context(), held.OpTimeout)
		defer cancel()
		who, err := h.staff(ctx, first.Token)
		switch {
		case errors.Is(err, agentdb.ErrUnauthorized):
			return reject(signal.CodeUnauthorized, "that token is not valid")
		case errors.Is(err, ErrNotStaff):
			return reject(CodeNotStaff, "only a supervisor or the admin may monitor calls")
		case err != nil:
			h.opts.Log.Warn("agents: monitor token not checked", "err", err)
			return reject(signal.CodeUnavailable, "cannot check the token now; try again")
		}
		conn, ok := h.host.NewConn(ws, who)
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
		m.stop(ReasonStopped)
		return nil
	}
}

// staff authenticates a monitor's token with Options.Staff; without one nobody may monitor.
func (h *Server) staff(ctx context.Context, token string) (string, error) {
	if h.opts.Staff == nil || token == "" {
		return "", agentdb.ErrUnauthorized
	}
	return h.opts.Staff(ctx, token)
}

// audit records who monitors which call in which mode (a start, or a change of mode).
func (h *Server) audit(who, callID, mode string, start bool) {
	action := "call.monitor"
	if !start {
		action = "call.monitor.mode"
	}
	h.opts.Log.Info("agents: monitoring", "who", who, "call", callID, "mode", mode, "start", start)
	h.host.Background(held.OpTimeout, func(ctx context.Context) {
		if err := h.opts.Store.Audited(ctx, store.Audit{Actor: who, Action: action, Target: callID, Detail: "mode " + mode}); err != nil {
			h.opts.Log.Warn("agents: monitoring not audited", "who", who, "call", callID, "err", err)
		}
	})
}
