package held

import (
	"testing"

	"github.com/switchboard/switchboard/webrtc/media"
)

// TestWhisperFollowsTheAgent: a whisper is aimed at the call's agent side; when that side
// changes (the agent's softphone reattaches, a leg of its own), the whisper follows it.
func TestWhisperFollowsTheAgent(t *testing.T) {
	first, sup := &nullSink{1}, &nullSink{2}
	c := answeredCall(t, first)
	if err := c.AddLeg(sup, media.RoleListen); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMonitorRole(sup, media.RoleWhisper); err != nil {
		t.Fatal(err)
	}
	hearsWhisper := func(agent Sink) bool {
		r := c.room.Load()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.mixer.Hears(r.legs[agent], r.legs[sup]) && !r.mixer.Hears(callerSlot, r.legs[sup])
	}
	if !hearsWhisper(first) {
		t.Fatal("the agent does not hear the whisper, or the caller does")
	}
	// The agent's side goes and comes back as a new leg (another sink: a reconnect).
	c.detach(first)
	again := &nullSink{3}
	if err := c.attach("ann", again); err != nil {
		t.Fatal(err)
	}
	if !hearsWhisper(again) {
		t.Error("the whisper did not follow the agent's side back")
	}
}

// TestWhisperNeedsTheAgent: a supervisor cannot whisper while the call's agent is off its
// audio, nor set a role for a leg that is not in the room.
func TestWhisperNeedsTheAgent(t *testing.T) {
	ann, sup := &nullSink{1}, &nullSink{2}
	c := answeredCall(t, ann)
	if err := c.SetMonitorRole(sup, media.RoleListen); err == nil {
		t.Error("a role was set on a call that is no room")
	}
	if err := c.AddLeg(sup, media.RoleListen); err != nil {
		t.Fatal(err)
	}
	c.detach(ann)
	if err := c.SetMonitorRole(sup, media.RoleWhisper); err == nil {
		t.Error("a whisper was taken with the agent off the call's audio")
	}
	if err := c.SetMonitorRole(&nullSink{3}, media.RoleTalk); err == nil {
		t.Error("a role was set for a leg not in the room")
	}
}
