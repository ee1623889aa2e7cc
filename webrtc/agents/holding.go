package agents

import (
	"context"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/monitor"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// The calls this instance holds the carrier media of (package held), as the hub keeps them:
// its registry of held calls and number legs, and the hub as their host.

// Types of package held that the carrier side and the wiring name through this package.
type (
	// MediaReceiver receives one carrier media stream's frames, in order, from one goroutine.
	// It has the methods of the webhooks' media receiver, so the wiring can hand it over as
	// it is.
	MediaReceiver = held.MediaReceiver
	// Placement asks the carrier side to place an outbound call for an agent.
	Placement = held.Placement
	// RecordingOptions turn recording on (HubOptions.Recording; nil: off).
	RecordingOptions = held.RecordingOptions
	// StaffAuthenticator says who a staff token is ("admin", "supervisor:<id>"), for audits
	// and logs; agentdb.ErrUnauthorized for a token of nobody, ErrNotStaff for an agent's.
	StaffAuthenticator = monitor.StaffAuthenticator
)

// ErrNotStaff is what HubOptions.Staff returns for a valid token whose role may not monitor
// (an agent's).
var ErrNotStaff = monitor.ErrNotStaff

// Monitor modes, as the console and the monitor socket name them.
const (
	MonitorListen  = monitor.Listen
	MonitorWhisper = monitor.Whisper
	MonitorBarge   = monitor.Barge
)

// mediaSink is the agent side of a held call (held.Sink): a session's agentSink, a relay, a
// monitor.
type mediaSink = held.Sink

// notice is a message between instances (hub_notices.go).
type notice = held.Notice

// opTimeout bounds background work that talks to Redis or a carrier.
const opTimeout = held.OpTimeout

// errNotHere is returned for a call whose media belongs to another instance.
var errNotHere = held.ErrNotHere

// errCallOver is returned for a call that has ended.
var errCallOver = held.ErrCallOver

func (h *Hub) held(callID string) *held.Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[callID]
}

func (h *Hub) heldCalls() []*held.Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*held.Call, 0, len(h.calls))
	for _, c := range h.calls {
		out = append(out, c)
	}
	return out
}

// holderFor returns the held call for callID, taking it from its offer if this instance is
// its holder and does not know it yet (the notice that announced it may be late or lost).
func (h *Hub) holderFor(ctx context.Context, callID string) (*held.Call, error) {
	if c := h.held(callID); c != nil {
		return c, nil
	}
	o, err := h.st.Offer(ctx, callID)
	switch {
	case err != nil:
		return nil, err
	case o.State == agentdb.OfferEnded, o.Bridge != "":
		return nil, errCallOver // a number leg is taken by its bridge's holder (h.leg), or nowhere
	case o.Holder != h.opts.Instance:
		return nil, errNotHere
	}
	return h.adopt(o)
}

// adopt starts holding the call of offer o, or returns the one already held.
func (h *Hub) adopt(o agentdb.Offer) (*held.Call, error) {
	h.mu.Lock()
	if c := h.calls[o.Call]; c != nil {
		h.mu.Unlock()
		return c, nil
	}
	if h.closed {
		h.mu.Unlock()
		return nil, errCallOver
	}
	c := held.New(hubHost{h}, &h.heldOpts, o)
	h.calls[o.Call] = c
	h.mu.Unlock()
	c.Start(o)
	return c, nil
}

func (h *Hub) leg(id string) *held.Leg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.legs[id]
}

// legChanged follows a number leg's carrier state: its end (busy, no answer, failed, hung up).
func (h *Hub) legChanged(callID string, st call.State) {
	if !st.Terminal() {
		return
	}
	if l := h.leg(callID); l != nil {
		l.CarrierEnded(st)
	}
}

// hubHost is the hub as its held calls' host (held.Host) and its monitors' (monitor.Host).
// Its methods take h.mu, a leaf, and nothing else: a held call calls them under its own lock.
type hubHost struct{ h *Hub }

func (x hubHost) After(d time.Duration, f func()) *time.Timer { return x.h.after(d, f) }
func (x hubHost) Background(timeout time.Duration, f func(ctx context.Context)) {
	x.h.background(timeout, f)
}
func (x hubHost) Send(instance string, n held.Notice) { x.h.send(instance, n) }
func (x hubHost) Poke()                               { x.h.poke() }

func (x hubHost) Go(f func()) bool {
	if !x.h.enter() {
		return false
	}
	go func() {
		defer x.h.wg.Done()
		f()
	}()
	return true
}

func (x hubHost) Forget(c *held.Call) {
	h := x.h
	h.mu.Lock()
	if h.calls[c.ID()] == c {
		delete(h.calls, c.ID())
	}
	h.mu.Unlock()
}

func (x hubHost) TrackLeg(l *held.Leg) {
	h := x.h
	h.mu.Lock()
	h.legs[l.ID()] = l
	h.mu.Unlock()
}

func (x hubHost) UntrackLeg(l *held.Leg) {
	h := x.h
	h.mu.Lock()
	if h.legs[l.ID()] == l {
		delete(h.legs, l.ID())
	}
	h.mu.Unlock()
}

func (x hubHost) Holder(ctx context.Context, callID string) (*held.Call, error) {
	return x.h.holderFor(ctx, callID)
}

func (x hubHost) DialRelay(ctx context.Context, holderURL, callID, agent string, sink held.Sink) (*relay.Path, error) {
	return x.h.dialRelay(ctx, holderURL, callID, agent, sink)
}

func (x hubHost) NewConn(ws *websocket.Conn, who string) (*signal.Conn, bool) {
	return x.h.newAgentConn(ws, who)
}
