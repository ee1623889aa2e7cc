package held

import (
	"errors"

	"github.com/switchboard/switchboard/webrtc/media"
)

// Monitoring, as the held call sees it: a supervisor's leg in the call's room (AddLeg, then
// SetMonitorRole for its mode: listen, whisper or barge), a whisper aimed at whichever agent
// side has the call now. The monitor's socket and its relay are package monitor's.

// AnsweredNow reports whether an agent has the call.
func (c *Call) AnsweredNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseAnswered
}

// errNotMonitoring: the call has no room with this monitor in it (it ended, or moved).
var errNotMonitoring = errors.New("the call is no longer monitored here")

// SetMonitorRole gives sink, a monitor's leg in the call's room, role; a whisper is heard by
// the call's agent. It fails when the call's agent is not on its audio (a whisper needs it).
func (c *Call) SetMonitorRole(sink Sink, role media.Role) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.room.Load()
	if c.phase != phaseAnswered || r == nil {
		return errNotMonitoring
	}
	agent := c.sink.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	slot, ok := r.legs[sink]
	if !ok {
		return errNotMonitoring
	}
	target := -1
	if role == media.RoleWhisper {
		t, ok := -1, false
		if agent != nil {
			t, ok = r.legs[agent.s]
		}
		if !ok {
			return errors.New("the agent is not on the call's audio now: whisper when it is back")
		}
		target = t
	}
	if !r.mixer.SetRole(slot, role, target) {
		return errNotMonitoring
	}
	return nil
}

// retargetWhispersLocked aims every whispering leg of the call's room at the call's agent
// side now: after the agent's softphone reattached (a new leg) or a warm transfer completed
// (another agent has the call). Without an agent side, whispers are heard by nobody until
// one attaches. c.mu is held.
func (c *Call) retargetWhispersLocked() {
	r := c.room.Load()
	if r == nil {
		return
	}
	agent := c.sink.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	target, ok := -1, false
	if agent != nil {
		target, ok = r.legs[agent.s]
	}
	if !ok {
		return
	}
	for _, slot := range r.legs {
		if slot != target && r.mixer.Role(slot) == media.RoleWhisper {
			r.mixer.SetRole(slot, media.RoleWhisper, target)
		}
	}
}

// IsRoom reports whether the call is a room now (more than one agent side, or the caller on
// hold): frames go through its mixer, not straight between the caller and its agent.
func (c *Call) IsRoom() bool { return c.room.Load() != nil }
