package agents

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
)

// A call's carrier media stream is pointed at the instance holding its agent, but a call can
// outlive that choice: a queued call is offered to an agent on another instance, or the agent
// reconnects elsewhere. Then the agent's instance opens a relay, a WebSocket to the holder's
// /internal/media/{call}, and the holder forwards frames both ways. Each frame is one binary
// message: a kind byte, then the payload.
const (
	relayAudio  = 'a' // either way: 20 ms of mu-law
	relayDigit  = 'd' // holder to agent: a digit the caller pressed
	relayEnded  = 'e' // holder to agent: the call ended; the payload is the reason
	relayHangup = 'h' // agent to holder: the agent hung up
	relayMoved  = 'm' // holder to agent: the call's media moved to another instance
)

// callPath is how an agent's session reaches the call it is on: directly when this instance
// holds the call's media, through a relay when another does. It is the leg of the agent's
// bridge.
type callPath interface {
	SendAudio(ulaw []byte) error
	// Hangup asks the holder to end the call.
	Hangup()
	// Close detaches the session from the call without ending it.
	Close()
}

// localPath joins a session to a call held by the same instance.
type localPath struct {
	held *heldCall
	sink mediaSink
}

func (p *localPath) SendAudio(ulaw []byte) error { return p.held.sendAudio(ulaw) }
func (p *localPath) Hangup()                     { p.held.end(reasonAgentHangup, endHangup) }
func (p *localPath) Close()                      { p.held.detach(p.sink) }

func (h *Hub) relayToken(callID, agent string) string {
	m := hmac.New(sha256.New, h.opts.RelaySecret)
	m.Write([]byte("relay|" + callID + "|" + agent))
	return hex.EncodeToString(m.Sum(nil))
}

// relayRefused is the holder's answer that it has no such call for the agent; any other
// relay failure means the holder could not be reached (it may have died).
type relayRefused struct{ msg string }

func (e *relayRefused) Error() string { return e.msg }

// relayPath is the agent side of a relay.
type relayPath struct {
	conn *websocket.Conn
	sink mediaSink

	mu      sync.Mutex // serialises writes
	buf     []byte
	closing bool
	done    chan struct{}
}

// dialRelay opens a relay to the instance at holderURL for the call agent has answered; the
// holder's frames go to sink.
func (h *Hub) dialRelay(ctx context.Context, holderURL, callID, agent string, sink mediaSink) (*relayPath, error) {
	u := "ws" + strings.TrimPrefix(holderURL, "http") + "/internal/media/" + url.PathEscape(callID) +
		"?agent=" + url.QueryEscape(agent) + "&token=" + h.relayToken(callID, agent)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // the status line is all we read of a refusal
	}
	if err != nil {
		// The holder's own answer (no such call, a bad token) is a refusal. A 5xx is not the
		// holder speaking: a load balancer or front door in front of a dead instance answers
		// 502/503, and the call is about to be re-anchored, so it is waited for as an
		// unreachable holder is.
		if resp != nil && resp.StatusCode < 500 {
			return nil, &relayRefused{"agents: relay to " + holderURL + " refused: " + resp.Status}
		}
		if resp != nil {
			return nil, fmt.Errorf("agents: relay to %s: %s: %w", holderURL, resp.Status, err)
		}
		return nil, err
	}
	p := &relayPath{conn: conn, sink: sink, done: make(chan struct{})}
	if !h.enter() {
		_ = conn.Close() // the hub is shutting down; the relay was never used
		return nil, errCallOver
	}
	go func() {
		defer h.wg.Done()
		defer close(p.done)
		p.read()
	}()
	return p, nil
}

func (p *relayPath) read() {
	for {
		_, msg, err := p.conn.ReadMessage()
		if err != nil {
			p.mu.Lock()
			closing := p.closing
			p.mu.Unlock()
			if !closing {
				// The holder went away without ending the call: it died, or is stopping. The
				// call lives on at the carrier and comes back on a survivor; the agent's side
				// waits for it there (or for the holder, if only the relay broke).
				p.sink.Moved()
			}
			return
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case relayAudio:
			p.sink.Audio(msg[1:])
		case relayDigit:
			p.sink.DTMF(string(msg[1:]))
		case relayEnded:
			p.mu.Lock()
			p.closing = true
			p.mu.Unlock()
			p.sink.Ended(string(msg[1:]))
			return
		case relayMoved:
			p.mu.Lock()
			p.closing = true
			p.mu.Unlock()
			p.sink.Moved()
			return
		}
	}
}

func (p *relayPath) write(kind byte, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(append(p.buf[:0], kind), payload...)
	_ = p.conn.SetWriteDeadline(time.Now().Add(2 * time.Second)) // a closed socket fails the write
	return p.conn.WriteMessage(websocket.BinaryMessage, p.buf)
}

func (p *relayPath) SendAudio(ulaw []byte) error { return p.write(relayAudio, ulaw) }
func (p *relayPath) Hangup()                     { _ = p.write(relayHangup, nil) } // a lost hang-up ends with the relay

// Close closes the relay and waits for its reader. It must not be called from the sink.
func (p *relayPath) Close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	_ = p.conn.Close() // ends read, which is all Close waits for
	<-p.done
}

// relaySink is the holder side of a relay: the agent's side of a call held here.
type relaySink struct {
	conn *websocket.Conn
	mu   sync.Mutex
	buf  []byte
}

func (s *relaySink) write(kind byte, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(append(s.buf[:0], kind), payload...)
	// A frame the peer instance does not get is lost like a packet; a dead relay ends its read.
	_ = s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = s.conn.WriteMessage(websocket.BinaryMessage, s.buf)
}

func (s *relaySink) Audio(ulaw []byte)   { s.write(relayAudio, ulaw) }
func (s *relaySink) DTMF(digit string)   { s.write(relayDigit, []byte(digit)) }
func (s *relaySink) Ended(reason string) { s.write(relayEnded, []byte(reason)); _ = s.conn.Close() } // the call is over
func (s *relaySink) Moved()              { s.write(relayMoved, nil); _ = s.conn.Close() }            // the agent follows the call

// Instances do not send an Origin; the token is the authentication.
var relayUpgrader = websocket.Upgrader{
	ReadBufferSize: 2048, WriteBufferSize: 2048,
	CheckOrigin: func(*http.Request) bool { return true },
}

// handleRelay serves another instance's relay for a call held here, once that instance's
// agent has answered it.
func (h *Hub) handleRelay() echo.HandlerFunc {
	return func(c echo.Context) error {
		callID, agent := c.Param("call"), c.QueryParam("agent")
		want := h.relayToken(callID, agent)
		if subtle.ConstantTimeCompare([]byte(c.QueryParam("token")), []byte(want)) != 1 {
			return c.NoContent(http.StatusForbidden)
		}
		held, err := h.holderFor(c.Request().Context(), callID)
		if err != nil {
			return c.NoContent(http.StatusNotFound)
		}
		if err := held.answered(agent); err != nil {
			return c.NoContent(http.StatusConflict)
		}
		conn, err := relayUpgrader.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil
		}
		defer conn.Close() //nolint:errcheck // the relay is over when this handler returns
		conn.SetReadLimit(4096)
		sink := &relaySink{conn: conn}
		if err := held.attach(agent, sink); err != nil {
			sink.Ended(reasonGone)
			return nil
		}
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				held.detach(sink)
				return nil
			}
			if len(msg) == 0 {
				continue
			}
			switch msg[0] {
			case relayAudio:
				_ = held.sendAudio(msg[1:]) // a stream that cannot take audio has ended and ends the call
			case relayHangup:
				held.end(reasonAgentHangup, endHangup)
			}
		}
	}
}
