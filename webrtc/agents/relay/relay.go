// Package relay carries one call's audio between two Switchboard instances. A call's carrier
// media stream is pointed at the instance holding its agent, but a call can outlive that
// choice: a queued call is offered to an agent on another instance, or the agent reconnects
// elsewhere. Then the agent's instance dials a relay, a WebSocket to the holder's
// /internal/media/{call} (Dial, Path), and the holder forwards frames both ways (Accept,
// Conn). Each frame is one binary message: a kind byte, then the payload. The tokens the
// instances present to each other are an HMAC of the call and the agent under a secret every
// instance of a deployment shares.
//
// It is the wire and nothing more: which calls a relay may join, and what its frames do to a
// call, are package agents'. It starts no goroutine; its users read on goroutines they own.
package relay

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
)

// Frame kinds.
const (
	frameAudio  = 'a' // either way: 20 ms of mu-law
	frameDigit  = 'd' // holder to agent: a digit the caller pressed
	frameEnded  = 'e' // holder to agent: the call ended; the payload is the reason
	frameHangup = 'h' // agent to holder: the agent hung up
	frameMoved  = 'm' // holder to agent: the call's media moved to another instance
	// frameMode, on a monitor's relay: to the holder, the mode the supervisor asks for; back,
	// the mode now in force, or "!" and why it is not.
	frameMode = 'o'
)

// writeTimeout bounds one frame's write; a frame the peer instance does not take in time is
// lost like a packet.
const writeTimeout = 2 * time.Second

// Token is what the agent's instance presents to the holder to relay callID for agent.
func Token(secret []byte, callID, agent string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("relay|" + callID + "|" + agent))
	return hex.EncodeToString(m.Sum(nil))
}

// TokenValid reports, in constant time, whether token is Token(secret, callID, agent).
func TokenValid(secret []byte, callID, agent, token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(Token(secret, callID, agent))) == 1
}

// Sink receives what the holder sends, on the goroutine running Path.Read.
type Sink interface {
	Audio(ulaw []byte)
	DTMF(digit string)
	// Ended says the call is over, and why.
	Ended(reason string)
	// Moved says the call's media went elsewhere, or the holder went away without ending it.
	Moved()
}

// ModeSink is a Sink that monitors: it hears how the holder took each SetMode.
type ModeSink interface {
	Sink
	// Mode is the mode now in force, or err says why the last one asked for is not.
	Mode(mode string, err error)
}

// ModeError is the holder's reason for not taking a mode.
type ModeError struct{ msg string }

func (e *ModeError) Error() string { return e.msg }

// RefusedError is the holder's answer that it has no such call for the agent; any other Dial
// error (a 5xx from a front door included) means the holder could not be reached (it may
// have died).
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

// Path is the agent's end of a relay: the leg of the agent's bridge when another instance
// holds the call's media.
type Path struct {
	conn *websocket.Conn
	sink Sink

	mu      sync.Mutex // serialises writes; guards closing and reading
	buf     []byte
	closing bool
	reading bool
	done    chan struct{} // closed when Read returns, if it ran
}

// Dial opens a relay to the instance at holderURL for the call agent has answered, presenting
// token. The holder's frames go to sink once the caller runs Read.
func Dial(ctx context.Context, holderURL, callID, agent, token string, sink Sink) (*Path, error) {
	u := "ws" + strings.TrimPrefix(holderURL, "http") + "/internal/media/" + url.PathEscape(callID) +
		"?agent=" + url.QueryEscape(agent) + "&token=" + token
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // the status line is all we read of a refusal
	}
	if err != nil {
		// The holder's own answer (no such call, a bad token) is a refusal. A 5xx is not the
		// holder speaking: a load balancer or front door in front of a dead instance answers
		// 502/503, and the call is about to be re-anchored, so it is waited for as an
		// unreachable holder is. Neither is a 421: the process at the holder's URL is not the
		// call's holder (a restart of the dead one, before the re-anchor).
		if resp != nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusMisdirectedRequest {
			return nil, &RefusedError{"agents: relay to " + holderURL + " refused: " + resp.Status}
		}
		if resp != nil {
			return nil, fmt.Errorf("agents: relay to %s: %s: %w", holderURL, resp.Status, err)
		}
		return nil, err
	}
	return &Path{conn: conn, sink: sink, done: make(chan struct{})}, nil
}

// Read hands the holder's frames to the sink until the relay ends. If the holder goes away
// without ending the call, the sink is told Moved: the call lives on at the carrier and comes
// back on a survivor. After Close, Read returns without calling the sink.
func (p *Path) Read() {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return
	}
	p.reading = true
	p.mu.Unlock()
	defer close(p.done)
	for {
		_, msg, err := p.conn.ReadMessage()
		if err != nil {
			p.mu.Lock()
			closing := p.closing
			p.mu.Unlock()
			if !closing {
				// The holder went away without ending the call: it died, or is stopping. The
				// agent's side waits for the call on a survivor (or for the holder, if only
				// the relay broke).
				p.sink.Moved()
			}
			return
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case frameAudio:
			p.sink.Audio(msg[1:])
		case frameDigit:
			p.sink.DTMF(string(msg[1:]))
		case frameEnded:
			p.setClosing()
			p.sink.Ended(string(msg[1:]))
			return
		case frameMoved:
			p.setClosing()
			p.sink.Moved()
			return
		case frameMode:
			if ms, ok := p.sink.(ModeSink); ok {
				if r := string(msg[1:]); strings.HasPrefix(r, "!") {
					ms.Mode("", &ModeError{r[1:]})
				} else {
					ms.Mode(r, nil)
				}
			}
		}
	}
}

func (p *Path) setClosing() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
}

func (p *Path) write(kind byte, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(append(p.buf[:0], kind), payload...)
	_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeout)) // a closed socket fails the write
	return p.conn.WriteMessage(websocket.BinaryMessage, p.buf)
}

// SendAudio sends 20 ms of the agent's mu-law to the holder.
func (p *Path) SendAudio(ulaw []byte) error { return p.write(frameAudio, ulaw) }

// SetMode asks the holder for a monitor's mode; the answer comes to the ModeSink.
func (p *Path) SetMode(mode string) error { return p.write(frameMode, []byte(mode)) }

// Hangup asks the holder to end the call; a lost hang-up ends with the relay.
func (p *Path) Hangup() { _ = p.write(frameHangup, nil) }

// Close closes the relay and waits for Read, if it runs. It must not be called from the sink.
func (p *Path) Close() {
	p.mu.Lock()
	p.closing = true
	reading := p.reading
	p.mu.Unlock()
	_ = p.conn.Close() // ends Read, which is all Close waits for
	if reading {
		<-p.done
	}
}

// Conn is the holder's end of a relay: the agent's side of a call held here. Its methods
// are safe to call from any goroutine and never wait longer than one write's bound.
type Conn struct {
	conn *websocket.Conn
	mu   sync.Mutex
	buf  []byte
}

// Instances do not send an Origin; the token is the authentication.
var upgrader = websocket.Upgrader{
	ReadBufferSize: 2048, WriteBufferSize: 2048,
	CheckOrigin: func(*http.Request) bool { return true },
}

// Accept upgrades a relay request whose token the caller has checked. On an error the
// response has been written.
func Accept(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(4096)
	return &Conn{conn: conn}, nil
}

func (c *Conn) write(kind byte, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(append(c.buf[:0], kind), payload...)
	// A frame the peer instance does not get is lost like a packet; a dead relay ends its read.
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = c.conn.WriteMessage(websocket.BinaryMessage, c.buf)
}

// Audio sends a carrier frame to the agent's instance.
func (c *Conn) Audio(ulaw []byte) { c.write(frameAudio, ulaw) }

// DTMF sends a digit the caller pressed.
func (c *Conn) DTMF(digit string) { c.write(frameDigit, []byte(digit)) }

// Ended tells the agent's instance the call is over, and closes the relay.
func (c *Conn) Ended(reason string) { c.write(frameEnded, []byte(reason)); _ = c.conn.Close() }

// Moved tells the agent's instance to follow the call elsewhere, and closes the relay.
func (c *Conn) Moved() { c.write(frameMoved, nil); _ = c.conn.Close() }

// Mode answers a monitor's SetMode: the mode in force, or why the one asked for is not.
func (c *Conn) Mode(mode string, err error) {
	if err != nil {
		mode = "!" + err.Error()
	}
	c.write(frameMode, []byte(mode))
}

// Serve reads the agent's frames until the relay ends: audio goes to audio, a hang-up to
// hangup.
func (c *Conn) Serve(audio func(ulaw []byte), hangup func()) { c.serve(audio, hangup, nil) }

// ServeMonitor reads a monitor's frames until the relay ends: audio goes to audio, each mode
// asked for to mode (which answers with Mode).
func (c *Conn) ServeMonitor(audio func(ulaw []byte), mode func(string)) {
	c.serve(audio, func() {}, mode)
}

func (c *Conn) serve(audio func(ulaw []byte), hangup func(), mode func(string)) {
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case frameAudio:
			audio(msg[1:])
		case frameHangup:
			hangup()
		case frameMode:
			if mode != nil {
				mode(string(msg[1:]))
			}
		}
	}
}

// Close closes the relay.
func (c *Conn) Close() error { return c.conn.Close() }
