package agents

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/monitor"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
)

// callPath is how an agent's session reaches the call it is on: directly when this instance
// holds the call's media, through a relay (package relay) when another does. It is the leg
// of the agent's bridge.
type callPath interface {
	SendAudio(ulaw []byte) error
	// Hangup asks the holder to end the call.
	Hangup()
	// Close detaches the session from the call without ending it.
	Close()
}

// localPath joins a session to a call held by the same instance.
type localPath struct {
	held  *held.Call
	sink  mediaSink
	agent string
}

func (p *localPath) SendAudio(ulaw []byte) error { return p.held.AudioFrom(p.sink, ulaw) }
func (p *localPath) Hangup()                     { p.held.HangupBy(p.agent) }
func (p *localPath) Close()                      { p.held.LegGone(p.sink) }

// dialRelay opens a relay to the instance at holderURL for the call agent has answered; the
// holder's frames go to sink, read on a goroutine the hub owns.
func (h *Hub) dialRelay(ctx context.Context, holderURL, callID, agent string, sink mediaSink) (*relay.Path, error) {
	p, err := relay.Dial(ctx, holderURL, callID, agent, relay.Token(h.opts.RelaySecret, callID, agent), sink)
	if err != nil {
		return nil, err
	}
	if !h.enter() {
		p.Close() // the hub is shutting down; the relay was never used
		return nil, errCallOver
	}
	go func() {
		defer h.wg.Done()
		p.Read()
	}()
	return p, nil
}

// handleRelay serves another instance's relay for a call held here, once that instance's
// agent has answered it.
func (h *Hub) handleRelay() echo.HandlerFunc {
	return func(c echo.Context) error {
		callID, agent := c.Param("call"), c.QueryParam("agent")
		if !relay.TokenValid(h.opts.RelaySecret, callID, agent, c.QueryParam("token")) {
			return c.NoContent(http.StatusForbidden)
		}
		heldCall, err := h.holderFor(c.Request().Context(), callID)
		if errors.Is(err, errNotHere) {
			// Another instance holds the call: this may be a new process behind the URL of
			// the holder that died, before the call is re-anchored. Not a refusal.
			return c.NoContent(http.StatusMisdirectedRequest)
		}
		if err != nil {
			return c.NoContent(http.StatusNotFound)
		}
		if who, ok := strings.CutPrefix(agent, monitor.RelayAgent); ok {
			return h.monitors.ServeRelay(c, heldCall, who)
		}
		if !heldCall.MayJoin(agent) {
			return c.NoContent(http.StatusConflict)
		}
		sink, err := relay.Accept(c.Response(), c.Request())
		if err != nil {
			return nil
		}
		defer sink.Close() //nolint:errcheck // the relay is over when this handler returns
		if err := heldCall.Join(c.Request().Context(), agent, sink); err != nil {
			sink.Ended(held.ReasonGone)
			return nil
		}
		sink.Serve(func(ulaw []byte) {
			_ = heldCall.AudioFrom(sink, ulaw) // a stream that cannot take audio has ended and ends the call
		}, func() { heldCall.HangupBy(agent) })
		heldCall.LegGone(sink)
		return nil
	}
}
