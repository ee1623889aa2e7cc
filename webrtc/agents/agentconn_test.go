package agents

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// rawSoftphone is a bare signalling WebSocket: it says hello and then reads only when told, so
// a test can play a browser that stops reading.
type rawSoftphone struct {
	conn *websocket.Conn
	msgs chan agentsim.SoftphoneMessage // filled by listen
}

// dialRaw signs agent id in over a WebSocket whose receive buffer is small, so a stalled
// reader fills it after a few messages.
func (h *testHub) dialRaw(t *testing.T, id string) *rawSoftphone {
	t.Helper()
	token := agentdb.NewAgentToken(id)
	if _, _, err := h.st.PutAgent(context.Background(), id, "Agent "+id, token, true); err != nil {
		t.Fatal(err)
	}
	return h.dialRawToken(t, token)
}

func (h *testHub) dialRawToken(t *testing.T, token string) *rawSoftphone {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096)
			}
			return c, err
		}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(h.url, "http")+"/agent/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.WriteJSON(map[string]string{"type": signal.TypeHello, "token": token}); err != nil {
		t.Fatal(err)
	}
	return &rawSoftphone{conn: conn, msgs: make(chan agentsim.SoftphoneMessage, 1024)}
}

// listen reads every message into p.msgs until the socket closes.
func (p *rawSoftphone) listen() (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, raw, err := p.conn.ReadMessage()
			if err != nil {
				return
			}
			var m agentsim.SoftphoneMessage
			json.Unmarshal(raw, &m)
			m.Raw = raw
			select {
			case p.msgs <- m:
			default:
			}
		}
	}()
	return done
}

func (p *rawSoftphone) await(t *testing.T, typ string, timeout time.Duration) agentsim.SoftphoneMessage {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.msgs:
			if m.Type == typ {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s message within %v", typ, timeout)
		}
	}
}

// TestStalledSoftphoneDelaysNoOtherAgent: one agent's browser stops reading while its socket
// has far more queued than the kernel buffers hold. A ring for another agent, handled by the
// same notice goroutine right after one for the stalled agent, still reaches its softphone
// within 100 ms; the stalled agent is cut off once its queue overflows.
func TestStalledSoftphoneDelaysNoOtherAgent(t *testing.T) {
	h := newTestHub(t, "")
	ann := h.dialRaw(t, "ann")
	annDone := ann.listen()
	ann.await(t, signal.TypeWelcome, 5*time.Second)
	sam := h.dialRaw(t, "sam") // never reads again
	redistest.Eventually(t, 5*time.Second, "sam signed in", func() bool { return h.session("sam") != nil })
	stalled := h.session("sam")

	// Far more than the socket buffers take, and less than the queue: sam's writer blocks.
	big := strings.Repeat("x", 64<<10)
	for range signal.MaxQueued / 2 {
		stalled.sendError(signal.CodeBadRequest, big, "")
	}

	ctx := context.Background()
	sent := time.Now()
	for _, n := range []notice{
		{Type: noticeRing, Agent: "sam", Call: "c-sam", From: "+15550001", To: "+15550100"},
		{Type: noticeRing, Agent: "ann", Call: "c-ann", From: "+15550002", To: "+15550100"},
	} {
		b, _ := json.Marshal(n)
		if err := h.st.NotifyInstance(ctx, h.opts.Instance, b); err != nil {
			t.Fatal(err)
		}
	}
	m := ann.await(t, signal.TypeRinging, 5*time.Second)
	if took := time.Since(sent); took > 100*time.Millisecond || m.CallID != "c-ann" {
		t.Fatalf("ann's ring came %v after it was sent (%s), behind a stalled agent", took, m.Raw)
	} else {
		t.Logf("ann's ring arrived %v after it was sent, behind a stalled agent", took)
	}

	// The stall was real: sam's writer is still stuck behind what it was given.
	stalled.mu.Lock()
	if q := stalled.conn.Queued(); q == 0 {
		t.Fatal("the stalled softphone's queue drained: its socket never filled, nothing was tested")
	}
	stalled.mu.Unlock()

	// Sam's queue overflows: its socket is closed and the session waits for a reconnect.
	for range signal.MaxQueued + 1 {
		stalled.sendError(signal.CodeBadRequest, big, "")
	}
	redistest.Eventually(t, 2*time.Second, "the stalled socket cut off", func() bool {
		stalled.mu.Lock()
		defer stalled.mu.Unlock()
		return stalled.conn == nil
	})
	sam.conn.Close()
	ann.conn.Close()
	<-annDone
}

// TestStuckWriteIsCutOffAfterItsBound: a browser that takes nothing while its queue stays
// short is cut off by the write deadline (the presence TTL, which also bounds how long a
// silent browser is waited for, is set far longer here).
func TestStuckWriteIsCutOffAfterItsBound(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) { o.PresenceTTL = time.Minute })
	h.dialRaw(t, "sam")
	redistest.Eventually(t, 5*time.Second, "sam signed in", func() bool { return h.session("sam") != nil })
	s := h.session("sam")
	big := strings.Repeat("x", 64<<10)
	for range signal.MaxQueued / 2 {
		s.sendError(signal.CodeBadRequest, big, "")
	}
	start := time.Now()
	redistest.Eventually(t, signal.WriteTimeout+3*time.Second, "the stuck socket cut off", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conn == nil
	})
	if took := time.Since(start); took < signal.WriteTimeout/2 {
		t.Fatalf("cut off after %v: by something other than the write deadline", took)
	}
}
