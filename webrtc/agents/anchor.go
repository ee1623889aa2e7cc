package agents

// Calls outlive the instance that carries their media. Each instance tells the others it is
// alive (a heartbeat in Redis every Liveness, good for LivenessTTL), and the calls whose media
// it holds are indexed under it. When an instance stops heartbeating (killed, or stopping and
// handing its calls over), a survivor claims its calls in one script (one owner per call),
// holds them as if their streams were pointed at it from the start, and asks each call's
// carrier to re-point the media stream here. The caller hears silence until the new stream
// starts, then the hold tone until the agent is joined again; the agent's side waits for the
// media with its PeerConnection up (session_media.go: awaitMedia).

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc/agents/held"
)

// claimBatch is how many calls one claim moves; the loop claims again at once while it fills.
const claimBatch = 64

// anchor keeps this instance's heartbeat and claims the calls of instances that died, until
// ctx ends. While handing over (Handover) it keeps saying it is gone instead, so calls that
// still reach it are claimed by the others too.
func (h *Hub) anchor(ctx context.Context) {
	tick := time.NewTicker(h.opts.Liveness)
	defer tick.Stop()
	failing, first := false, true
	for {
		h.mu.Lock()
		leaving := h.leaving
		h.mu.Unlock()
		var err error
		switch {
		case h.stalled.Load():
		case leaving:
			err = h.st.LeaveInstances(ctx, h.opts.Instance)
		default:
			var lapsed bool
			if lapsed, err = h.st.InstanceHeartbeat(ctx, h.opts.Instance, h.opts.PublicURL, h.opts.LivenessTTL); err == nil {
				if lapsed && !first {
					h.lapsed()
				}
				first = false
				err = h.claim(ctx)
			}
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			h.log.Warn("agents: instance liveness not stored; calls of dead instances wait", "err", err)
		case err == nil && failing:
			failing = false
			h.log.Info("agents: instance liveness stored again")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lapsed: this instance's heartbeat had lapsed (it stalled, or lost Redis), so others may
// have taken its calls and had them streamed to themselves. It lets go of every call now held
// elsewhere, closing its old stream if the carrier kept it open (a Telnyx call may stream to
// both), so that only one instance bridges each call.
func (h *Hub) lapsed() {
	h.log.Warn("agents: this instance was taken for dead; letting go of calls taken over")
	h.background(opTimeout, func(ctx context.Context) {
		for _, c := range h.heldCalls() {
			if o, err := h.st.Offer(ctx, c.ID()); err == nil && o.State != agentdb.OfferEnded && o.Holder != h.opts.Instance {
				c.Moved()
			}
		}
	})
}

// claim takes over the live calls of dead instances, a batch at a time.
func (h *Hub) claim(ctx context.Context) error {
	for {
		got, err := h.st.ClaimOrphans(ctx, h.opts.Instance, h.opts.PublicURL, claimBatch)
		if err != nil {
			return err
		}
		for _, co := range got {
			h.reanchor(ctx, co)
		}
		if len(got) < claimBatch {
			return nil
		}
	}
}

// reanchor holds a call claimed from a dead instance and has its carrier stream it here. A
// queued call keeps its place and deadline; one that was ringing is offered again (the
// agent's softphone stops ringing); an answered one waits for its agent to join it again; one
// bridging to a number is bridged again here (held's resumeNumber), its answered leg
// re-pointed too.
// If the carrier refuses, the call is given up on the agents' side (media-lost): the carrier
// side has it reconciled, which settles its record with the carrier's real outcome.
func (h *Hub) reanchor(ctx context.Context, co agentdb.ClaimedOffer) {
	o := co.Offer
	h.log.Info("agents: call of a dead instance taken over", "call", o.Call, "was", co.Prev, "agent", co.PrevAgent)
	if co.Prev == agentdb.OfferRinging && co.PrevAgent != "" {
		// Told before the call is offered again (which may ring the same agent), and in
		// order with that ring: directly, or on the agent's instance's channel.
		h.endRing(ctx, o.Call, co.PrevAgent)
	}
	c, err := h.adopt(o)
	if err != nil {
		return // shutting down: the offer names this instance, whose calls are claimed next
	}
	h.background(opTimeout, func(ctx context.Context) {
		start := time.Now()
		if err := h.opts.Carriers.Repoint(ctx, o.Call, h.opts.PublicURL); err != nil {
			h.log.Warn("agents: the carrier did not re-point a call taken over; it is given up", "call", o.Call, "err", err)
			c.End(held.ReasonMediaLost, held.EndStreamGone)
			return
		}
		h.log.Info("agents: call re-pointed here", "call", o.Call, "took", time.Since(start))
	})
	if o.NumberLeg != "" && o.NumberAnswered {
		// Bridged to a number: its answered leg is a call of ours too, re-pointed beside it
		// (a leg still ringing has its stream pointed where its offer says when it answers).
		// A refused leg ends the caller's call, as its far end hanging up would.
		h.background(opTimeout, func(ctx context.Context) {
			start := time.Now()
			if err := h.opts.Carriers.Repoint(ctx, o.NumberLeg, h.opts.PublicURL); err != nil {
				h.log.Warn("agents: the carrier did not re-point a number leg taken over; the call ends", "call", o.Call, "leg", o.NumberLeg, "err", err)
				if l := h.leg(o.NumberLeg); l != nil {
					l.RepointRefused()
				}
				return
			}
			h.log.Info("agents: number leg re-pointed here", "call", o.Call, "leg", o.NumberLeg, "took", time.Since(start))
		})
	}
}

// endRing tells agent's session that the call no longer rings for it, before returning.
func (h *Hub) endRing(ctx context.Context, callID, agent string) {
	p, err := h.st.Presence(ctx, agent)
	switch {
	case err != nil || p.Instance == "":
	case p.Instance == h.opts.Instance:
		if s := h.session(agent); s != nil {
			s.callEnded(ctx, callID, held.ReasonGone)
		}
	default:
		b, _ := json.Marshal(notice{Type: noticeEnded, Call: callID, Agent: agent, Reason: held.ReasonGone})
		if err := h.st.NotifyInstance(ctx, p.Instance, b); err != nil {
			h.log.Warn("agents: notice not sent", "to", p.Instance, "type", noticeEnded, "call", callID, "err", err)
		}
	}
}

// Handover hands the calls whose media this instance holds to the other instances before it
// stops (a graceful stop, SIGTERM): it stops heartbeating and says it is gone, so survivors
// claim its calls at once and re-point them; meanwhile it keeps bridging each call until its
// carrier moves the stream away. It returns when no call is held here any more, or after
// HubOptions.Handover (or when ctx ends); Run's end then closes whatever is left. Call it
// before the HTTP server stops taking media streams and relays.
func (h *Hub) Handover(ctx context.Context) {
	h.mu.Lock()
	h.leaving = true
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.opts.Handover)
	defer cancel()
	start := time.Now()
	if err := h.st.LeaveInstances(ctx, h.opts.Instance); err != nil {
		h.log.Warn("agents: could not tell the other instances this one is stopping", "err", err)
	}
	if n, err := h.st.OtherInstancesAlive(ctx, h.opts.Instance); err == nil && n == 0 {
		// Nobody to take the calls: they end with this instance, as they always did.
		if held := h.heldCount(); held > 0 {
			h.log.Warn("agents: no other instance is alive to take this one's calls", "calls", held)
		}
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		left := h.letGoMoved(ctx)
		if left == 0 {
			h.log.Info("agents: calls handed over", "took", time.Since(start))
			return
		}
		select {
		case <-ctx.Done():
			h.log.Warn("agents: stopping with calls not handed over", "calls", left)
			return
		case <-tick.C:
		}
	}
}

func (h *Hub) heldCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// letGoMoved lets go of held calls that another instance took over and that have no stream
// here (one with a stream lets go when its carrier stops it), and returns how many are left.
func (h *Hub) letGoMoved(ctx context.Context) int {
	calls := h.heldCalls()
	left := len(calls)
	for _, c := range calls {
		if c.HasStream() {
			continue
		}
		o, err := h.st.Offer(ctx, c.ID())
		if err == nil && (o.State == agentdb.OfferEnded || o.Holder != h.opts.Instance) {
			c.Moved()
			left--
		}
	}
	return left
}
