package agents

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// Recording: the instance holding a call's carrier stream writes the call's recording, as
// it is the one place both sides' audio passes through, whichever instance the agent is on:
// the caller's frames as they arrive (left) and what goes back to the caller from the agent
// side (right). The hold tone is not recorded. A call's recording is a part per instance
// that carried it (store.RecordingPart); an instance that takes a call over goes on
// recording it (paused, if it was) in a part of its own.
//
// The agent's softphone asks for a state (record: recording or paused) through its session,
// which passes it to the holder (a notice when that is another instance); the holder answers
// with the state now in force (noticeRecorded), which the session shows on the call.

// RecordingOptions turn recording on (HubOptions.Recording; nil: off).
type RecordingOptions struct {
	Dir recording.Dir
	// OnDemand records a call only once its agent starts it; otherwise every call is
	// recorded from the moment its agent is connected.
	OnDemand bool
	// Keep is how long the records of the recordings' parts live: the files' retention.
	Keep time.Duration
}

// Recording states as the softphone shows them.
const (
	recordOff       = "off"
	recordRecording = string(store.RecordingActive)
	recordPaused    = string(store.RecordingPaused)
)

// callRecording is a held call's recording while this instance writes it.
type callRecording struct {
	rec  *recording.Recorder
	part store.RecordingPart
}

// recordCaller and recordAgent hand a frame to the call's recording, if it has one.
func (c *heldCall) recordCaller(ulaw []byte) {
	if r := c.recording.Load(); r != nil {
		r.rec.Caller(ulaw)
	}
}

func (c *heldCall) recordAgent(ulaw []byte) {
	if r := c.recording.Load(); r != nil {
		r.rec.Agent(ulaw)
	}
}

// connectedForRecording: the call's agent is connected. With every call recorded, its
// recording starts; a call taken over from another instance goes on as it was there.
func (c *heldCall) connectedForRecording() {
	opts := c.hub.opts.Recording
	if opts == nil || c.recording.Load() != nil {
		return
	}
	c.hub.background(opTimeout, func(ctx context.Context) {
		want := ""
		if !opts.OnDemand {
			want = recordRecording
		}
		parts, err := c.hub.st.RecordingParts(ctx, c.id)
		if err != nil {
			c.hub.log.Warn("agents: could not read whether the call was being recorded", "call", c.id, "err", err)
		}
		if n := len(parts); n > 0 {
			// The part of the instance that carried the call before: its state goes on here.
			switch last := parts[n-1]; {
			case last.State == store.RecordingPaused || last.State == store.RecordingMoved && last.EndedPaused:
				want = recordPaused
			case last.State == store.RecordingActive || last.State == store.RecordingMoved:
				want = recordRecording
			}
		}
		if want != "" {
			_ = c.record(ctx, want) // record logs and tells the agent what went wrong
		}
	})
}

var errNotRecording = errors.New("agents: recording is off on this instance")

// record brings the call's recording to want (recording or paused), starting it if needed,
// and tells the agent's instance the state now in force.
func (c *heldCall) record(ctx context.Context, want string) error {
	opts := c.hub.opts.Recording
	if opts == nil {
		c.tellRecording(recordOff)
		return errNotRecording
	}
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return errCallOver
	}
	r := c.recording.Load()
	if r == nil {
		now := time.Now()
		rec, err := recording.Start(opts.Dir.Path(recording.Name(c.id, c.hub.opts.Instance, now)))
		if err != nil {
			c.mu.Unlock()
			c.hub.log.Error("agents: call not recorded: the file could not be made", "call", c.id, "err", err)
			c.tellRecording(recordOff)
			return err
		}
		r = &callRecording{rec: rec, part: store.RecordingPart{File: recording.Name(c.id, c.hub.opts.Instance, now),
			Instance: c.hub.opts.Instance, URL: c.hub.opts.PublicURL, Started: now}}
		c.recording.Store(r)
	}
	if want == recordPaused {
		r.rec.Pause()
	} else {
		r.rec.Resume()
	}
	part := partOf(r, store.RecordingState(c.recordingStateLocked(r)))
	c.mu.Unlock()
	c.storePart(ctx, part)
	c.tellRecording(string(part.State))
	return nil
}

func (c *heldCall) recordingStateLocked(r *callRecording) string {
	if r.rec.Paused() {
		return recordPaused
	}
	return recordRecording
}

// partOf is r's part as it stands, in state.
func partOf(r *callRecording, state store.RecordingState) store.RecordingPart {
	s := r.rec.Summary()
	p := r.part
	p.State, p.DurationMS = state, s.Duration.Milliseconds()
	for _, sp := range s.Paused {
		p.Paused = append(p.Paused, store.RecordingSpan{From: sp.From, To: sp.To})
	}
	return p
}

// stopRecording ends the call's recording here, in state: done when the call ended, moved
// when its audio went to another instance (which goes on).
func (c *heldCall) stopRecording(ctx context.Context, state store.RecordingState) {
	r := c.recording.Swap(nil)
	if r == nil {
		return
	}
	paused := r.rec.Paused()
	sum, err := r.rec.Stop()
	part := partOf(r, state)
	part.DurationMS = sum.Duration.Milliseconds()
	part.EndedPaused = paused
	if err != nil {
		part.State, part.Error = store.RecordingFailed, err.Error()
		c.hub.log.Error("agents: a call's recording failed", "call", c.id, "err", err)
	}
	c.storePart(ctx, part)
}

func (c *heldCall) storePart(ctx context.Context, p store.RecordingPart) {
	if err := c.hub.st.PutRecordingPart(ctx, c.id, p, c.hub.opts.Recording.Keep); err != nil {
		c.hub.log.Warn("agents: a recording's record not stored (the file is written all the same)", "call", c.id, "err", err)
	}
}

// tellRecording tells the call's agent the recording's state.
func (c *heldCall) tellRecording(state string) {
	c.mu.Lock()
	agent, inst := c.agent, c.agentInstance
	c.mu.Unlock()
	if agent == "" {
		return
	}
	c.hub.background(opTimeout, func(ctx context.Context) {
		// The agent may have moved since its call was routed: tell the instance holding it.
		if p, err := c.hub.st.Presence(ctx, agent); err == nil && p.Instance != "" {
			inst = p.Instance
		}
		c.hub.send(inst, notice{Type: noticeRecorded, Call: c.id, Agent: agent, Reason: state})
	})
}

// recordCommand: the agent asks for its call's recording to be in state want.
func (s *session) recordCommand(want string) {
	if want != recordRecording && want != recordPaused {
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
		s.hub.background(opTimeout, func(ctx context.Context) { s.hub.recordHeld(ctx, c.id, s.agent.ID, want) })
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

// recordHeld brings the recording of a call held here to want, for its agent.
func (h *Hub) recordHeld(ctx context.Context, callID, agent, want string) {
	c := h.held(callID)
	if c == nil {
		return // moved on meanwhile; the agent asks again where it is now
	}
	c.mu.Lock()
	mine := c.agent == agent && c.phase == phaseAnswered
	c.mu.Unlock()
	if !mine {
		return
	}
	if err := c.record(ctx, want); err != nil && !errors.Is(err, errNotRecording) && !errors.Is(err, errCallOver) {
		h.log.Warn("agents: recording not changed", "call", callID, "want", want, "err", err)
	}
}
