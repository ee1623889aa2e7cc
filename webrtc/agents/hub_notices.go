package agents

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Notices between instances: each instance listens on its own Pub/Sub channel (store.Listen)
// for what another needs of it (hold this call's media, ring this agent, this call ended,
// this agent signed in elsewhere), and on the shared channels for calls that changed and
// agents that freed up or were revoked.
// Pub/Sub delivers at most once; each notice has a slower path that does not need it.

// Notice types.
const (
	noticeHold          = "hold"                   // to the holder: a call's media is coming here; take it
	noticeRing          = held.NoticeRing          // to an agent's instance: ring the agent for a call
	noticeEnded         = held.NoticeEnded         // to an agent's instance: the call ended (or stopped ringing)
	noticeDeclined      = "declined"               // to the holder: the agent declined; offer the call again
	noticeHangup        = "hangup"                 // to the holder: the agent hung up
	noticeKick          = "kick"                   // to an agent's old instance: the agent signed in elsewhere
	noticeDialed        = "dialed"                 // to an agent's instance: the agent placed a call through the API
	noticeAttach        = held.NoticeAttach        // to an agent's instance: the call's media has arrived at its holder
	noticeTransfer      = held.NoticeTransfer      // to the holder: the call's agent transferred it; ring the target
	noticeConsult       = held.NoticeConsult       // to the holder: the call's agent consults Agent; ring it
	noticeConsultDo     = held.NoticeConsultDo     // to the holder: take the consult's step State
	noticeTransferState = held.NoticeTransferState // to an agent's instance: how its warm transfer goes (State)
	noticeRecord        = "record"                 // to the holder: the agent wants the recording in state Reason
	noticeRecorded      = held.NoticeRecorded      // to an agent's instance: the call's recording is in state Reason
	noticeToNumber      = held.NoticeToNumber      // to the holder: the call's agent transferred it to number To on leg Leg
)

// send delivers n to instance, which may be this one. Delivery is asynchronous either way,
// so a sender never re-enters its own locks.
func (h *Hub) send(instance string, n notice) {
	if instance == "" {
		return
	}
	if instance == h.opts.Instance {
		h.background(opTimeout, func(ctx context.Context) { h.handle(ctx, n) })
		return
	}
	h.background(opTimeout, func(ctx context.Context) {
		b, _ := json.Marshal(n)
		if err := h.st.NotifyInstance(ctx, instance, b); err != nil {
			h.log.Warn("agents: notice not sent", "to", instance, "type", n.Type, "call", n.Call, "err", err)
		}
	})
}

func (h *Hub) notice(n store.Notice) {
	switch n.Kind {
	case store.NoticeSubscribed, store.NoticeAgentFree:
		h.poke()
	case store.NoticeCall:
		h.callChanged(n.CallID, n.State)
	case store.NoticeAgentRevoked:
		h.revoked(n.Agent, n.TokenID)
	case store.NoticeInstance:
		var m notice
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			h.log.Warn("agents: unreadable notice", "err", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		h.handle(ctx, m)
	}
}

func (h *Hub) handle(ctx context.Context, n notice) {
	switch n.Type {
	case noticeHold:
		if _, err := h.holderFor(ctx, n.Call); err != nil {
			h.log.Warn("agents: cannot hold call", "call", n.Call, "err", err)
		}
	case noticeRing:
		if s := h.session(n.Agent); s != nil {
			s.ring(ctx, n)
		}
	case noticeEnded:
		if s := h.session(n.Agent); s != nil {
			s.callEnded(ctx, n.Call, n.Reason)
		}
	case noticeDeclined:
		if c := h.held(n.Call); c != nil {
			c.Declined(n.Agent)
		}
	case noticeHangup:
		if n.Reason == held.ReasonCarrier { // the call was never placed: nothing to hang up
			if c := h.held(n.Call); c != nil {
				c.End(held.ReasonCarrier, held.EndStreamGone)
			}
			return
		}
		h.hangupCall(n.Call, h.opts.Instance)
	case noticeKick:
		if s := h.session(n.Agent); s != nil && s.id == n.Session {
			s.replaced()
		}
	case noticeDialed:
		if s := h.session(n.Agent); s != nil {
			s.dialed(ctx, n.Call, n.To)
		}
	case noticeTransfer:
		h.transferNotice(ctx, n)
	case noticeToNumber:
		h.transferNumberNotice(ctx, n)
	case noticeConsult:
		if c := h.held(n.Call); c != nil {
			c.ConsultRing(n.By, n.Agent, n.Instance)
		}
	case noticeConsultDo:
		if c := h.held(n.Call); c != nil {
			c.ConsultDo(n.By, n.State)
		}
	case noticeTransferState:
		if s := h.session(n.Agent); s != nil {
			s.send(signal.TransferMessage{Type: signal.TypeTransfer, CallID: n.Call, To: n.By, State: n.State, Reason: n.Reason})
		}
	case noticeAttach:
		if s := h.session(n.Agent); s != nil {
			s.mediaReady(ctx, n.Call, n.Holder, n.HolderURL)
		}
	case noticeRecord:
		if c := h.held(n.Call); c != nil { // else moved on meanwhile; the agent asks again where it is now
			c.RecordFor(ctx, n.Agent, n.Reason)
		}
	case noticeRecorded:
		if s := h.session(n.Agent); s != nil {
			s.recorded(n.Call, n.Reason)
		}
	}
}

// callChanged follows a call's state as the carrier reports it: sessions show it, and a call
// that ends before its media stream ever arrived (busy, no answer) ends here too.
func (h *Hub) callChanged(callID string, st call.State) {
	if c := h.held(callID); c != nil && st.Terminal() {
		c.End(st.String(), held.EndStreamGone)
	}
	h.legChanged(callID, st)
	h.mu.Lock()
	var on []*session
	for _, s := range h.sessions {
		on = append(on, s)
	}
	h.mu.Unlock()
	for _, s := range on {
		s.callState(callID, st)
	}
}
