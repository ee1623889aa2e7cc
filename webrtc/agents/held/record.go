package held

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/store"
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
// with the state now in force (NoticeRecorded), which the session shows on the call.

// RecordingOptions turn recording on (agents.HubOptions.Recording; nil: off).
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
	RecordOff       = "off"
	RecordRecording = string(store.RecordingActive)
	RecordPaused    = string(store.RecordingPaused)
)

// callRecording is a held call's recording while this instance writes it.
type callRecording struct {
	rec  *recording.Recorder
	part store.RecordingPart
}

// recordCaller and recordAgent hand a frame to the call's recording, if it has one.
func (c *Call) recordCaller(ulaw []byte) {
	if r := c.recording.Load(); r != nil {
		r.rec.Caller(ulaw)
	}
}

func (c *Call) recordAgent(ulaw []byte) {
	if r := c.recording.Load(); r != nil {
		r.rec.Agent(ulaw)
	}
}

// connectedForRecording: the call's agent is connected. With every call recorded, its
// recording starts; a call taken over from another instance goes on as it was there.
func (c *Call) connectedForRecording() {
	opts := c.opts.Recording
	if opts == nil || c.recording.Load() != nil {
		return
	}
	c.host.Background(OpTimeout, func(ctx context.Context) {
		want := ""
		if !opts.OnDemand {
			want = RecordRecording
		}
		parts, err := c.opts.Store.RecordingParts(ctx, c.id)
		if err != nil {
			c.opts.Log.Warn("agents: could not read whether the call was being recorded", "call", c.id, "err", err)
		}
		if n := len(parts); n > 0 {
			// The part of the instance that carried the call before: its state goes on here.
			switch last := parts[n-1]; {
			case last.State == store.RecordingPaused || last.State == store.RecordingMoved && last.EndedPaused:
				want = RecordPaused
			case last.State == store.RecordingActive || last.State == store.RecordingMoved:
				want = RecordRecording
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
func (c *Call) record(ctx context.Context, want string) error {
	opts := c.opts.Recording
	if opts == nil {
		c.tellRecording(RecordOff)
		return errNotRecording
	}
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return ErrCallOver
	}
	r := c.recording.Load()
	if r == nil {
		now := time.Now()
		rec, err := recording.Start(opts.Dir.Path(recording.Name(c.id, c.opts.Instance, now)))
		if err != nil {
			c.mu.Unlock()
			c.opts.Log.Error("agents: call not recorded: the file could not be made", "call", c.id, "err", err)
			c.tellRecording(RecordOff)
			return err
		}
		r = &callRecording{rec: rec, part: store.RecordingPart{File: recording.Name(c.id, c.opts.Instance, now),
			Instance: c.opts.Instance, URL: c.opts.PublicURL, Started: now}}
		c.recording.Store(r)
	}
	if want == RecordPaused {
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

func (c *Call) recordingStateLocked(r *callRecording) string {
	if r.rec.Paused() {
		return RecordPaused
	}
	return RecordRecording
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
func (c *Call) stopRecording(ctx context.Context, state store.RecordingState) {
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
		c.opts.Log.Error("agents: a call's recording failed", "call", c.id, "err", err)
	}
	c.storePart(ctx, part)
}

func (c *Call) storePart(ctx context.Context, p store.RecordingPart) {
	if err := c.opts.Store.PutRecordingPart(ctx, c.id, p, c.opts.Recording.Keep); err != nil {
		c.opts.Log.Warn("agents: a recording's record not stored (the file is written all the same)", "call", c.id, "err", err)
	}
}

// tellRecording tells the call's agent the recording's state.
func (c *Call) tellRecording(state string) {
	c.mu.Lock()
	agent, inst := c.agent, c.agentInstance
	c.mu.Unlock()
	if agent == "" {
		return
	}
	c.host.Background(OpTimeout, func(ctx context.Context) {
		// The agent may have moved since its call was routed: tell the instance holding it.
		if p, err := c.opts.Store.Presence(ctx, agent); err == nil && p.Instance != "" {
			inst = p.Instance
		}
		c.host.Send(inst, Notice{Type: NoticeRecorded, Call: c.id, Agent: agent, Reason: state})
	})
}

// RecordFor brings the call's recording to want (RecordRecording or RecordPaused) for agent,
// if agent has the call.
func (c *Call) RecordFor(ctx context.Context, agent, want string) {
	c.mu.Lock()
	mine := c.agent == agent && c.phase == phaseAnswered
	c.mu.Unlock()
	if !mine {
		return
	}
	if err := c.record(ctx, want); err != nil && !errors.Is(err, errNotRecording) && !errors.Is(err, ErrCallOver) {
		c.opts.Log.Warn("agents: recording not changed", "call", c.id, "want", want, "err", err)
	}
}
