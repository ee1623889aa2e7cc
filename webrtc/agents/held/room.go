package held

import (
	"errors"
	"sync"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// A held call as a room: the caller's carrier stream and the agents' sides (the agent who has
// the call, and whoever joins it: the target of a consult, a conference's third party). Two
// legs, the caller and one agent, are the plain relay call.go has always been: frames pass
// untouched, nothing is decoded, and no room exists. From a third leg on, every leg's frames
// go to the room, which mixes them on a 20 ms clock of its own (media.Mixer: minus each leg's
// own audio, by who hears whom) and sends each leg what it hears.
//
// Locks: room.mu is a leaf (a held call takes it under its own mu); the room's clock
// goroutine takes nothing else and calls the legs (sinks, the carrier stream) with no lock
// held, so a held call can stop it under its mu.

// callerSlot is the caller's mixer slot: the room is made with the caller first.
const callerSlot = 0

// roomQueue bounds the frames a leg may have waiting for the room's clock: enough to ride
// out one late tick, not so many that the leg drifts behind the others.
const roomQueue = 3

type room struct {
	c *Call

	mu     sync.Mutex
	mixer  *media.Mixer
	legs   map[Sink]int // agent sides by mixer slot
	queued [media.MaxParties][][]byte

	stop, done chan struct{}
}

// roomLeg is one agent side of a room, as the clock reads it.
type roomLeg struct {
	sink Sink
	slot int
}

func newRoom(c *Call) *room {
	r := &room{c: c, mixer: media.NewMixer(), legs: map[Sink]int{}}
	r.mixer.Add() // callerSlot; an empty mixer always has room
	return r
}

// add joins sink to the room with role; false if the room is full or sink is in it already.
func (r *room) add(sink Sink, role media.Role) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.legs[sink]; ok {
		return false
	}
	slot, ok := r.mixer.Add()
	if !ok {
		return false
	}
	r.mixer.SetRole(slot, role, -1)
	r.legs[sink] = slot
	return true
}

// remove takes sink out of the room and returns how many agent legs remain.
func (r *room) remove(sink Sink) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slot, ok := r.legs[sink]; ok {
		delete(r.legs, sink)
		r.mixer.Remove(slot)
		r.queued[slot] = nil
	}
	return len(r.legs)
}

func (r *room) has(sink Sink) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.legs[sink]
	return ok
}

// slotLocked is the mixer slot of sink's leg, or the caller's when sink is nil; false if
// sink is not in the room. Called with r.mu held.
func (r *room) slotLocked(sink Sink) (int, bool) {
	if sink == nil {
		return callerSlot, true
	}
	slot, ok := r.legs[sink]
	return slot, ok
}

// setRole sets the role of sink's leg, or of the caller when sink is nil.
func (r *room) setRole(sink Sink, role media.Role) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	slot, ok := r.slotLocked(sink)
	if !ok {
		return false
	}
	return r.mixer.SetRole(slot, role, -1)
}

// callerRole is the caller's role in the room.
func (r *room) callerRole() media.Role {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mixer.Role(callerSlot)
}

// put queues a leg's frame (the caller's when sink is nil) for the next tick; false if sink
// is not in the room.
func (r *room) put(sink Sink, ulaw []byte) bool {
	if len(ulaw) != media.FrameSamples {
		return true // not a 20 ms frame: the mixer could not use it; dropped like a bad packet
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	slot, ok := r.slotLocked(sink)
	if !ok {
		return false
	}
	q := r.queued[slot]
	if len(q) == roomQueue {
		q = q[1:] // the leg runs ahead of the clock: its oldest frame goes
	}
	r.queued[slot] = append(q, append([]byte(nil), ulaw...))
	return true
}

// start runs the room's clock on a goroutine the host owns, until stopClock.
func (r *room) start() {
	stop, done := make(chan struct{}), make(chan struct{})
	if !r.c.host.Go(func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		in, out := make([][]byte, media.MaxParties), make([][]byte, media.MaxParties)
		for i := range out {
			out[i] = make([]byte, media.FrameSamples)
		}
		var legs []roomLeg
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var callerHears bool
			legs, callerHears = r.mix(in, out, legs[:0])
			if callerHears {
				// A stream that cannot take audio has ended, and says so through Stopped.
				_ = r.c.sendAudio(out[callerSlot])
			}
			for _, l := range legs {
				l.sink.Audio(out[l.slot])
			}
		}
	}) {
		return
	}
	r.stop, r.done = stop, done
}

// mix takes one queued frame from each leg and mixes them into out; it returns the agent legs
// to send to and whether the caller is to be sent its mix (not while held: the hold tone
// plays to it).
func (r *room) mix(in, out [][]byte, legs []roomLeg) ([]roomLeg, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for slot, q := range r.queued {
		in[slot] = nil
		if len(q) > 0 {
			in[slot], r.queued[slot] = q[0], q[1:]
		}
	}
	r.mixer.Mix(in, out)
	for sink, slot := range r.legs {
		legs = append(legs, roomLeg{sink, slot})
	}
	return legs, r.mixer.Role(callerSlot) != media.RoleHeld
}

// stopClock stops the room's clock and waits for it.
func (r *room) stopClock() {
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.stop = nil
	}
}

// errRoomFull: the call's room has no slot left for another leg.
var errRoomFull = errors.New("agents: the call has as many parties as it can take")

// AddLeg adds another agent's side to the answered call (a consult's target, a conference's
// third party) with role: the call becomes a room, mixed, from its third leg on.
func (c *Call) AddLeg(sink Sink, role media.Role) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != phaseAnswered {
		return ErrNotYours
	}
	r := c.room.Load()
	if r == nil {
		r = newRoom(c)
		if cur := c.sink.Load(); cur != nil {
			r.add(cur.s, media.RoleTalk)
		}
		if !r.add(sink, role) {
			return errRoomFull
		}
		r.start()
		c.room.Store(r)
		return nil
	}
	if r.has(sink) {
		return nil
	}
	if !r.add(sink, role) {
		return errRoomFull
	}
	return nil
}

// RemoveLeg takes sink, a side that joined, out of the call's room. When only the call's agent
// is left with a caller who is not on hold, the room goes and the call is a plain relay
// again.
func (c *Call) RemoveLeg(sink Sink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.room.Load()
	if r == nil {
		return
	}
	r.remove(sink)
	c.settleRoomLocked()
}

// settleRoomLocked lets the room go when only the call's agent (or nobody) is left in it with
// a caller who is not on hold: the call is a plain relay again.
func (c *Call) settleRoomLocked() {
	r := c.room.Load()
	if r == nil {
		return
	}
	r.mu.Lock()
	left := len(r.legs)
	r.mu.Unlock()
	cur := c.sink.Load()
	pair := left == 0 || left == 1 && cur != nil && r.has(cur.s)
	if pair && r.callerRole() == media.RoleTalk {
		c.room.Store(nil) // frames go the direct way from now on
		r.stopClock()
	}
}

// HoldCaller puts the caller on hold in the call's room while its agents consult (the caller
// hears the hold tone and nobody hears the caller), or takes it off hold.
func (c *Call) HoldCaller(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.room.Load()
	if c.phase != phaseAnswered || r == nil {
		return ErrNotYours
	}
	role := media.RoleTalk
	if on {
		role = media.RoleHeld
	}
	r.setRole(nil, role)
	if on {
		c.startToneLocked()
	} else {
		c.stopToneLocked()
		c.settleRoomLocked()
	}
	return nil
}

// closeRoomLocked stops the call's room, if any, and returns its legs other than except, to
// be told the call is over.
func (c *Call) closeRoomLocked(except *sinkRef) []Sink {
	r := c.room.Swap(nil)
	if r == nil {
		return nil
	}
	r.stopClock()
	r.mu.Lock()
	defer r.mu.Unlock()
	var others []Sink
	for s := range r.legs {
		if except == nil || s != except.s {
			others = append(others, s)
		}
	}
	return others
}

// endTransferred tells the agent who handed the call on (old, nil when none held it) and the
// room's others (closeRoomLocked's result) that the call left them.
func endTransferred(old *sinkRef, others []Sink) {
	if old != nil {
		old.s.Ended(ReasonTransferred)
	}
	for _, s := range others {
		s.Ended(ReasonTransferred)
	}
}
