package agents

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Bounds of one softphone's outgoing messages. A browser that stops reading (a frozen tab, a
// dead network path the kernel has not noticed yet) fills its socket buffers, then its queue;
// it is then cut off, so the one goroutine that hands out notices never waits for it.
const (
	// agentQueue is how many messages may wait for one softphone: a burst of ICE candidates
	// and call notices is a few dozen.
	agentQueue = 128
	// agentWriteTimeout bounds one write to a softphone; a write that takes longer means the
	// browser is not reading, and the socket is closed.
	agentWriteTimeout = 5 * time.Second
	// agentFarewellTimeout bounds the last messages written to a socket being closed.
	agentFarewellTimeout = time.Second
)

// agentConn is one softphone WebSocket's sending side: a bounded queue drained by a writer
// goroutine of its own, so a slow browser delays nobody but itself. It is the only writer of
// the socket (gorilla allows one concurrent writer, plus Close); the session's read loop is
// the only reader.
type agentConn struct {
	ws    *websocket.Conn
	queue chan outFrame
	log   *slog.Logger // names the agent

	stopOnce sync.Once
	stop     chan struct{} // closed by close: write what is queued, say goodbye, close
	done     chan struct{} // closed when the writer has closed the socket and returned
}

// outFrame is one message for the softphone: JSON text, or a ping.
type outFrame struct {
	ping bool
	data []byte
}

// newAgentConn starts the writer of agent's socket ws on a goroutine owned by h; false if h
// has shut down (the socket is then closed).
func (h *Hub) newAgentConn(ws *websocket.Conn, agent string) (*agentConn, bool) {
	c := &agentConn{ws: ws, queue: make(chan outFrame, agentQueue), log: h.log.With("agent", agent),
		stop: make(chan struct{}), done: make(chan struct{})}
	if !h.enter() {
		_ = ws.Close() // the hub is shutting down: nothing more to say to this socket
		close(c.done)
		return c, false
	}
	go func() {
		defer h.wg.Done()
		defer close(c.done)
		if err := c.write(); err != nil {
			c.log.Info("agents: softphone socket closed: a write failed or took too long", "err", err)
		}
	}()
	return c, true
}

// write sends queued frames until close, or until a write fails or stalls past its bound.
func (c *agentConn) write() error {
	defer c.ws.Close() //nolint:errcheck // the writer is done with the socket either way
	for {
		select {
		case f := <-c.queue:
			if err := c.writeFrame(f, time.Now().Add(agentWriteTimeout)); err != nil {
				return err
			}
		case <-c.stop:
			c.farewell()
			return nil
		}
	}
}

// farewell writes what was queued before the close (a last state, the reason for the close)
// and a close frame, all within agentFarewellTimeout: a browser that does not read gets the
// deadline, not a wait.
func (c *agentConn) farewell() {
	deadline := time.Now().Add(agentFarewellTimeout)
	for {
		select {
		case f := <-c.queue:
			if c.writeFrame(f, deadline) != nil {
				return
			}
		default:
			// A farewell the browser does not get changes nothing: the socket closes next.
			_ = c.ws.SetWriteDeadline(deadline)
			_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			return
		}
	}
}

func (c *agentConn) writeFrame(f outFrame, deadline time.Time) error {
	if f.ping {
		return c.ws.WriteControl(websocket.PingMessage, nil, deadline)
	}
	_ = c.ws.SetWriteDeadline(deadline) // fails only on a closed socket, which the write reports
	return c.ws.WriteMessage(websocket.TextMessage, f.data)
}

// send queues msg for the softphone without waiting. A softphone whose queue is full is too
// far behind to catch up: its socket is closed, and its session waits for it to reconnect as
// after any dropped connection.
func (c *agentConn) send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		return // our own message types always marshal
	}
	c.enqueue(outFrame{data: b})
}

// ping queues a WebSocket ping (browsers answer it by themselves).
func (c *agentConn) ping() { c.enqueue(outFrame{ping: true}) }

func (c *agentConn) enqueue(f outFrame) {
	select {
	case <-c.stop:
		return
	default:
	}
	select {
	case c.queue <- f:
	default:
		c.log.Warn("agents: softphone cut off: it stopped reading its messages", "queued", agentQueue)
		c.abort()
	}
}

// close writes what is queued, then closes the socket, within agentFarewellTimeout. It does
// not wait: the hub waits for every writer when it shuts down.
func (c *agentConn) close() { c.stopOnce.Do(func() { close(c.stop) }) }

// abort closes the socket at once: a blocked write fails, and so does the session's read.
func (c *agentConn) abort() {
	c.close()
	_ = c.ws.Close() // aborting: the point is to cut the socket, its error says nothing more
}
