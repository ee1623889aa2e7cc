package agents

import (
	"context"

	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// Recording as the agents' side sees it: the agent's softphone asks for a state (record:
// recording or paused) through its session, which passes it to the holder (a notice when
// that is another instance); the holder (held.Call.RecordFor) answers with the state now in
// force (noticeRecorded), which the session shows on the call.

// recordCommand: the agent asks for its call's recording to be in state want.
func (s *session) recordCommand(want string) {
	if want != held.RecordRecording && want != held.RecordPaused {
		s.sendError(signal.CodeBadRequest, "record state must be recording or paused", "")
		return
	}
	if s.hub.opts.Recording == nil {
		// Every instance of a deployment has the same setting (the holder may be another).
		s.sendError(signal.CodeBadRequest, "recording is off on this server", "")
		return
	}
	s.mu.Lock()
	c := s.call
	s.mu.Unlock()
	if c == nil || !c.connected {
		s.sendError(signal.CodeNoCall, "no connected call to record", "")
		return
	}
	if c.holder == "" || c.holder == s.hub.opts.Instance {
		s.hub.background(opTimeout, func(ctx context.Context) {
			if heldCall := s.hub.held(c.id); heldCall != nil { // else moved on meanwhile; the agent asks again where it is now
				heldCall.RecordFor(ctx, s.agent.ID, want)
			}
		})
		return
	}
	s.hub.send(c.holder, notice{Type: noticeRecord, Call: c.id, Agent: s.agent.ID, Reason: want})
}

// recordingMode is how calls are recorded, as the softphone is told: all, on-demand, or "".
func (h *Hub) recordingMode() string {
	switch o := h.opts.Recording; {
	case o == nil:
		return ""
	case o.OnDemand:
		return "on-demand"
	default:
		return "all"
	}
}

// recorded: the holder says the call's recording is in state.
func (s *session) recorded(callID, state string) {
	s.mu.Lock()
	c := s.call
	if c == nil || c.id != callID || c.recording == state {
		s.mu.Unlock()
		return
	}
	c.recording = state
	v := c.view()
	s.mu.Unlock()
	s.send(signal.CallMessage{Type: signal.TypeCall, CallView: v})
}
