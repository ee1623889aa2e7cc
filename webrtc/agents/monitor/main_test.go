package monitor

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Every socket's writer and pinger must be gone when the tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// testHost holds no call: every call is unknown here. It owns the sockets' writers.
type testHost struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (h *testHost) Holder(context.Context, string) (*held.Call, error) { return nil, store.ErrNotFound }
func (h *testHost) DialRelay(context.Context, string, string, string, held.Sink) (*relay.Path, error) {
	return nil, errors.New("no relays in these tests")
}

func (h *testHost) NewConn(ws *websocket.Conn, who string) (*signal.Conn, bool) {
	c := signal.NewConn(ws, slog.New(slog.DiscardHandler))
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		c.Discard()
		return c, false
	}
	h.wg.Go(func() { _ = c.Write() }) // a failed write ends the socket, which the test sees
	return c, true
}

func (h *testHost) Background(timeout time.Duration, f func(ctx context.Context)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			f(ctx)
		})
	}
}

// staff knows one supervisor token and one agent's.
func staff(_ context.Context, token string) (string, error) {
	switch token {
	case "sup-token":
		return "supervisor:sue", nil
	case "agent-token":
		return "", ErrNotStaff
	}
	return "", agentdb.ErrUnauthorized
}

// TestRefusals: the first message names a staff token, a call and a known mode; an origin
// not allowed never gets a socket. Each refusal is one error, then the socket closes.
func TestRefusals(t *testing.T) {
	host := &testHost{}
	done := make(chan struct{})
	srv := New(host, Options{Staff: staff, Origins: signal.NewOrigins("https://switchboard.example", nil),
		PresenceTTL: time.Minute, Log: slog.New(slog.DiscardHandler), Done: done})
	e := echo.New()
	e.GET("/agent/monitor", srv.Handle())
	hs := httptest.NewServer(e)
	defer func() {
		hs.Close()
		close(done)
		host.mu.Lock()
		host.closed = true
		host.mu.Unlock()
		host.wg.Wait()
	}()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/agent/monitor"

	_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"https://elsewhere.example"}})
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a foreign origin got %v, %v; want 403", resp, err)
	}

	for _, tc := range []struct {
		first map[string]any
		code  string
	}{
		{map[string]any{"type": "hello", "token": "sup-token", "call_id": "c1", "mode": Listen}, signal.CodeUnauthorized},
		{map[string]any{"type": "monitor", "token": "sup-token", "mode": Listen}, signal.CodeUnauthorized},
		{map[string]any{"type": "monitor", "token": "agent-token", "call_id": "c1", "mode": Listen}, CodeNotStaff},
		{map[string]any{"type": "monitor", "token": "nobody", "call_id": "c1", "mode": Listen}, signal.CodeUnauthorized},
		{map[string]any{"type": "monitor", "token": "sup-token", "call_id": "c1", "mode": "shout"}, signal.CodeBadRequest},
		{map[string]any{"type": "monitor", "token": "sup-token", "call_id": "c1", "mode": Whisper}, signal.CodeNoCall},
	} {
		ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteJSON(tc.first); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got signal.ErrorMessage
		if err := ws.ReadJSON(&got); err != nil || got.Type != signal.TypeError || got.Code != tc.code {
			t.Errorf("%v: got %+v (%v), want error %s", tc.first, got, err, tc.code)
		}
		if _, _, err := ws.ReadMessage(); err == nil {
			t.Errorf("%v: the socket stayed open after the refusal", tc.first)
		}
		_ = ws.Close()
	}
}
