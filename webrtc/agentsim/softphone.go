package agentsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	pion "github.com/pion/webrtc/v4"
)

// AddICECandidate adds a candidate trickled by the server (RTCIceCandidateInit JSON), as a
// browser's addIceCandidate does.
func (a *SimAgent) AddICECandidate(candidateJSON string) error {
	var c pion.ICECandidateInit
	if err := json.Unmarshal([]byte(candidateJSON), &c); err != nil {
		return fmt.Errorf("agentsim: sim agent candidate: %w", err)
	}
	return a.pc.AddICECandidate(c)
}

// The message types and shapes of docs/agents.md that the scripted softphone uses. They are
// written out here rather than imported from webrtc/agents so that the softphone speaks the
// documented protocol, as the page does, and a change to the server's side shows in tests.
const (
	msgHello     = "hello"
	msgOffer     = "offer"
	msgCandidate = "candidate"
	msgAnswer    = "answer"
	msgWelcome   = "welcome"
	msgError     = "error"
)

type sdpMessage struct {
	SDP string `json:"sdp"`
}

type candidateMessage struct {
	Candidate json.RawMessage `json:"candidate"`
}

// SoftphoneMessage is one message the signalling WebSocket sent a softphone, with the fields
// tests look at; Raw is all of it.
type SoftphoneMessage struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	From      string `json:"from"`
	To        string `json:"to"`
	Muted     bool   `json:"muted"`
	Held      bool   `json:"held"`
	Recording string `json:"recording"`
	Digit     string `json:"digit"`
	Raw       json.RawMessage
}

// SimSoftphone is a scripted softphone: it signs an agent in over the signalling WebSocket,
// negotiates a SimAgent the way the page negotiates the browser's PeerConnection, and keeps
// every message it receives for the test or drill to wait on. It speaks the protocol of
// docs/agents.md without a browser.
type SimSoftphone struct {
	Agent *SimAgent

	conn *websocket.Conn
	wmu  sync.Mutex

	mu      sync.Mutex
	msgs    []SoftphoneMessage
	taken   []bool
	changed chan struct{}
	done    chan struct{}
}

// DialSoftphone signs in at baseURL (http://host:port) with an agent token, waits for the
// welcome, and starts negotiating audio with a new SimAgent made from opts.
func DialSoftphone(ctx context.Context, baseURL, token string, opts SimAgentOptions) (*SimSoftphone, error) {
	u := "ws" + strings.TrimPrefix(strings.TrimRight(baseURL, "/"), "http") + "/agent/ws"
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // the handshake's answer is all we read
	}
	if err != nil {
		return nil, err
	}
	p := &SimSoftphone{conn: conn, changed: make(chan struct{}), done: make(chan struct{})}
	go p.read()
	if err := p.Send(map[string]any{"type": msgHello, "token": token}); err != nil {
		_ = p.Close() // the sign-in failed; err says why
		return nil, err
	}
	m, err := p.Expect(ctx, func(m SoftphoneMessage) bool { return m.Type == msgWelcome || m.Type == msgError })
	if err != nil {
		_ = p.Close() // the sign-in failed; err says why
		return nil, err
	}
	if m.Type == msgError {
		_ = p.Close() // refused; the error below says why
		return nil, fmt.Errorf("agentsim: sign-in refused: %s: %s", m.Code, m.Message)
	}
	if err := p.Negotiate(ctx, opts); err != nil {
		_ = p.Close() // the sign-in failed; err says why
		return nil, err
	}
	return p, nil
}

// Negotiate replaces the softphone's SimAgent with a new one and offers it, as the page does
// after every welcome.
func (p *SimSoftphone) Negotiate(ctx context.Context, opts SimAgentOptions) error {
	agent, err := NewSimAgent(opts)
	if err != nil {
		return err
	}
	offer, err := agent.Offer(ctx)
	if err != nil {
		_ = agent.Close() // the offer failed; err says why
		return err
	}
	p.mu.Lock()
	old := p.Agent
	p.Agent = agent
	p.mu.Unlock()
	if old != nil {
		_ = old.Close() // replaced by the new agent; its teardown changes nothing
	}
	return p.Send(map[string]any{"type": msgOffer, "sdp": offer})
}

func (p *SimSoftphone) read() {
	defer close(p.done)
	for {
		_, raw, err := p.conn.ReadMessage()
		if err != nil {
			p.mu.Lock()
			p.msgs = append(p.msgs, SoftphoneMessage{Type: "closed"})
			p.taken = append(p.taken, false)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
			return
		}
		var m SoftphoneMessage
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		m.Raw = raw
		p.mu.Lock()
		agent := p.Agent
		p.mu.Unlock()
		switch m.Type {
		case msgAnswer:
			// A bad answer or candidate leaves the agent unconnected, which the test or drill
			// waiting on WaitConnected sees; the reader has nobody else to tell.
			var a sdpMessage
			_ = json.Unmarshal(raw, &a)
			if agent != nil {
				_ = agent.Accept(a.SDP)
			}
		case msgCandidate:
			var c candidateMessage
			_ = json.Unmarshal(raw, &c)
			if agent != nil && len(c.Candidate) > 0 && string(c.Candidate) != "null" {
				_ = agent.AddICECandidate(string(c.Candidate))
			}
		}
		p.mu.Lock()
		p.msgs = append(p.msgs, m)
		p.taken = append(p.taken, false)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// Send sends one message (a map or struct marshalled as JSON).
func (p *SimSoftphone) Send(msg any) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)) // a closed socket fails the write
	return p.conn.WriteJSON(msg)
}

// Expect waits for the first message received (and not yet taken by Expect) that match
// accepts, and takes it. A closed socket is a message of type "closed".
func (p *SimSoftphone) Expect(ctx context.Context, match func(SoftphoneMessage) bool) (SoftphoneMessage, error) {
	for {
		p.mu.Lock()
		for i, m := range p.msgs {
			if !p.taken[i] && match(m) {
				p.taken[i] = true
				p.mu.Unlock()
				return m, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return SoftphoneMessage{}, errors.New("agentsim: softphone: no matching message: " + ctx.Err().Error())
		}
	}
}

// ExpectType waits for the next message of type typ (and, if given, about call id callID).
func (p *SimSoftphone) ExpectType(ctx context.Context, typ, callID string) (SoftphoneMessage, error) {
	return p.Expect(ctx, func(m SoftphoneMessage) bool {
		return m.Type == typ && (callID == "" || m.CallID == callID)
	})
}

// Messages returns every message received so far.
func (p *SimSoftphone) Messages() []SoftphoneMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]SoftphoneMessage(nil), p.msgs...)
}

// Drop closes the WebSocket without signing out, as a lost network or a closed laptop lid
// does, and waits for the reader. The SimAgent stays.
func (p *SimSoftphone) Drop() {
	_ = p.conn.Close() // dropping is the point; the reader sees it
	<-p.done
}

// Close closes the WebSocket and the SimAgent.
func (p *SimSoftphone) Close() error {
	p.Drop()
	p.mu.Lock()
	agent := p.Agent
	p.mu.Unlock()
	if agent != nil {
		return agent.Close()
	}
	return nil
}
