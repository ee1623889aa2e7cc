package signal

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
	// MaxQueued is how many messages may wait for one softphone: a burst of ICE candidates
	// and call notices is a few dozen.
	MaxQueued = 128
	// WriteTimeout bounds one write to a softphone; a write that takes longer means the
	// browser is not reading, and the socket is closed.
	WriteTimeout = 5 * time.Second
	// farewellTimeout bounds the last messages written to a socket being closed.
	farewellTimeout = time.Second
)

// Conn is one softphone WebSocket's sending side: a bounded queue drained by a writer
// goroutine of its own, so a slow browser delays nobody but itself. It is the only writer of
// the socket (gorilla allows one concurrent writer, plus Close); the session's read loop is
// the only reader.
type Conn struct {
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

// NewConn makes the sending side of a softphone's socket ws; log names the agent. Its owner
// runs Write on a goroutine of its own or, if it cannot, calls Discard.
func NewConn(ws *websocket.Conn, log *slog.Logger) *Conn {
	return &Conn{ws: ws, queue: make(chan outFrame, MaxQueued), log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Write sends queued messages until Close, or until a write fails or stalls past its bound,
// then closes the socket. It returns the error that stopped it: nil after Close.
func (c *Conn) Write() error {
	defer close(c.done)
	return c.write()
}

// Discard closes the socket of a Conn whose Write will never run.
func (c *Conn) Discard() {
	_ = c.ws.Close() // nothing was said on this socket, nor will be
	close(c.done)
}

// Queued is how many messages wait for the browser now.
func (c *Conn) Queued() int { return len(c.queue) }

// Done is closed once Write (or Discard) has closed the socket.
func (c *Conn) Done() <-chan struct{} { return c.done }

// write sends queued frames until close, or until a write fails or stalls past its bound.
func (c *Conn) write() error {
	defer c.ws.Close() //nolint:errcheck // the writer is done with the socket either way
	for {
		select {
		case f := <-c.queue:
			if err := c.writeFrame(f, time.Now().Add(WriteTimeout)); err != nil {
				return err
			}
		case <-c.stop:
			c.farewell()
			return nil
		}
	}
}

// farewell writes what was queued before the close (a last state, the reason for the close)
// and a close frame, all within farewellTimeout: a browser that does not read gets the
// deadline, not a wait.
func (c *Conn) farewell() {
	deadline := time.Now().Add(farewellTimeout)
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

func (c *Conn) writeFrame(f outFrame, deadline time.Time) error {
	if f.ping {
		return c.ws.WriteControl(websocket.PingMessage, nil, deadline)
	}
	_ = c.ws.SetWriteDeadline(deadline) // fails only on a closed socket, which the write reports
	return c.ws.WriteMessage(websocket.TextMessage, f.data)
}

// Send queues msg for the softphone without waiting. A softphone whose queue is full is too
// far behind to catch up: its socket is closed, and its session waits for it to reconnect as
// after any dropped connection.
func (c *Conn) Send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		return // our own message types always marshal
	}
	c.enqueue(outFrame{data: b})
}

// Ping queues a WebSocket ping (browsers answer it by themselves).
func (c *Conn) Ping() { c.enqueue(outFrame{ping: true}) }

func (c *Conn) enqueue(f outFrame) {
	select {
	case <-c.stop:
		return
	default:
	}
	select {
	case c.queue <- f:
	default:
		c.log.Warn("agents: softphone cut off: it stopped reading its messages", "queued", MaxQueued)
		c.Abort()
	}
}

// Close writes what is queued, then closes the socket, within farewellTimeout. It does
// not wait: Write's owner waits for it.
func (c *Conn) Close() { c.stopOnce.Do(func() { close(c.stop) }) }

// Abort closes the socket at once: a blocked write fails, and so does the session's read.
func (c *Conn) Abort() {
	c.Close()
	_ = c.ws.Close() // aborting: the point is to cut the socket, its error says nothing more
}
