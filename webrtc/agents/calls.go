package agents

import (
	"context"
	"errors"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// The hub's side of the carrier webhooks and the calls API: take an inbound call, say where
// a call's media stream must go, take the stream, and dial for an agent.

// InboundCall is an inbound call the carrier webhooks have stored.
type InboundCall struct {
	CallID, Carrier, CarrierCallID, From, To string
}

// Accept takes an inbound call for the agents: it rings the available agent idle the longest
// (its media stream then goes to that agent's instance), or queues it here with the hold tone
// until an agent frees up or the queue timeout passes. A webhook the carrier retries finds
// the call already routed and changes nothing.
func (h *Hub) Accept(ctx context.Context, in InboundCall) error {
	o, err := h.st.Route(ctx, agentdb.Offer{Call: in.CallID, Direction: call.Inbound, From: in.From, To: in.To,
		Carrier: in.Carrier, Holder: h.opts.Instance, HolderURL: h.opts.PublicURL}, h.opts.RingTimeout, offerTTL)
	if err != nil {
		return err
	}
	if o.State == agentdb.OfferEnded {
		return errCallOver
	}
	h.send(o.Holder, notice{Type: noticeHold, Call: in.CallID})
	return nil
}

// MediaBase returns the public base URL of the instance a call's media stream must be
// pointed at, or "" for this instance (calls the agents do not know).
func (h *Hub) MediaBase(ctx context.Context, callID string) (string, error) {
	o, err := h.st.Offer(ctx, callID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if o.Holder == h.opts.Instance {
		return "", nil
	}
	return o.HolderURL, nil
}

// StreamStarted takes the carrier media stream of a call this instance holds; its frames go
// to the returned receiver. A stream for a call held elsewhere, or over, is refused.
func (h *Hub) StreamStarted(ctx context.Context, callID string, stream interface {
	SendAudio(ulaw []byte) error
	Close() error
}) (MediaReceiver, error) {
	if l := h.leg(callID); l != nil {
		return l.StreamStarted(stream) // the far end of a transfer to a number answered
	}
	c, err := h.holderFor(ctx, callID)
	if err != nil {
		return nil, err
	}
	return c.StreamStarted(stream)
}

// ErrBadNumber is returned by Dial for a number that is not E.164.
var ErrBadNumber = errors.New("dial an E.164 number: + and country code, e.g. +15551234567")

// Dial places a call to number to for agent, which must be online and not on a call, as if
// the agent had dialled from its softphone (which shows the call). It returns our call id
// once the carrier router has placed the call.
func (h *Hub) Dial(ctx context.Context, agent, to string) (string, error) {
	if !signal.ValidNumber(to) {
		return "", ErrBadNumber
	}
	return h.dial(ctx, agent, h.session(agent), to)
}

// dial claims the agent for the call, shows it in the agent's session (local s, or through
// the agent's instance), and places it. On failure the agent is given back.
func (h *Hub) dial(ctx context.Context, agent string, s *session, to string) (string, error) {
	id := store.NewCallID()
	sessionID := ""
	if s != nil {
		sessionID = s.id
	}
	o, _, err := h.st.ClaimForDial(ctx, agent, sessionID, agentdb.Offer{Call: id, To: to}, offerTTL)
	if err != nil {
		return "", err
	}
	if o.Holder == h.opts.Instance {
		if s == nil {
			s = h.session(agent)
		}
		if _, err := h.adopt(o); err != nil {
			return "", err
		}
		if s != nil {
			s.startCall(ctx, &agentCall{id: id, direction: call.Outbound, to: to, state: call.Queued,
				holder: o.Holder, holderURL: o.HolderURL})
		}
	} else {
		h.send(o.Holder, notice{Type: noticeDialed, Call: id, Agent: agent, To: to})
	}
	placeCtx, cancel := context.WithTimeout(ctx, 2*opTimeout)
	defer cancel()
	err = h.opts.Carriers.Place(placeCtx, Placement{CallID: id, Agent: agent, To: to, MediaURL: o.HolderURL})
	if err != nil {
		h.log.Info("agents: call not placed", "call", id, "agent", agent, "err", err)
		if o.Holder == h.opts.Instance {
			if c := h.held(id); c != nil {
				c.End(held.ReasonCarrier, held.EndStreamGone)
			}
		} else {
			h.send(o.Holder, notice{Type: noticeHangup, Call: id, Reason: held.ReasonCarrier})
		}
		return "", err
	}
	return id, nil
}
