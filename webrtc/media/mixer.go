package media

import "math/bits"

// MaxParties is the most participants one Mixer takes: a conference, a consult and a
// supervisor or two fit many times over, and a listener set fits in one machine word.
const MaxParties = 32

// Role says whom a participant hears and who hears it. The mixer's hear matrix is derived from
// the roles, so it stays right as participants come and go.
type Role int8

const (
	// RoleUnknown is the zero Role; SetRole refuses it.
	RoleUnknown Role = iota
	// RoleTalk hears everyone who speaks to it and is heard by everyone who listens: a caller,
	// an agent, a conference party, a supervisor who barges in.
	RoleTalk
	// RoleListen hears everyone and is heard by nobody: a supervisor listening in.
	RoleListen
	// RoleWhisper hears everyone and is heard by one participant only, its target: a supervisor
	// coaching an agent without the caller hearing.
	RoleWhisper
	// RoleHeld hears nobody and is heard by nobody: the caller on hold while the agents
	// consult (the hold tone reaches the caller by another way).
	RoleHeld
)

var roleNames = [...]string{RoleUnknown: "unknown", RoleTalk: "talk", RoleListen: "listen",
	RoleWhisper: "whisper", RoleHeld: "held"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return roleNames[RoleUnknown]
	}
	return roleNames[r]
}

// ParseRole returns the Role named s, or RoleUnknown.
func ParseRole(s string) Role {
	for r, name := range roleNames {
		if name == s {
			return Role(r)
		}
	}
	return RoleUnknown
}

// Mixer mixes a room's 20 ms mu-law frames: each participant gets the sum of everyone it hears,
// never its own audio, clipped to 16 bits and encoded back to mu-law. A participant who hears
// exactly one voice in a frame gets that voice's bytes untouched (no decode, no re-encode), so
// a room of two is the plain relay a bridge is. Participants are slots 0..MaxParties-1.
//
// A Mixer is not safe for concurrent use: the room that owns it mixes on one goroutine. Its
// zero value is not usable: use NewMixer.
type Mixer struct {
	active uint32 // slots in use
	role   [MaxParties]Role
	target [MaxParties]int8 // a whisperer's target
	hears  [MaxParties]uint32

	lin [MaxParties][FrameSamples]int16
	sum [FrameSamples]int32
}

// NewMixer returns an empty mixer.
func NewMixer() *Mixer { return &Mixer{} }

// Add takes the lowest free slot for a participant with role RoleTalk and returns it; ok is
// false when the mixer is full.
func (m *Mixer) Add() (slot int, ok bool) {
	free := ^m.active
	if free == 0 {
		return 0, false
	}
	slot = bits.TrailingZeros32(free)
	m.active |= 1 << slot
	m.role[slot], m.target[slot] = RoleTalk, -1
	m.rebuild()
	return slot, true
}

// Remove frees slot; an unused slot is ignored.
func (m *Mixer) Remove(slot int) {
	if !m.inUse(slot) {
		return
	}
	m.active &^= 1 << slot
	m.role[slot] = RoleUnknown
	// A whisperer whose target left is heard by nobody until given a new one, not by
	// whoever takes the slot next.
	for s := range MaxParties {
		if int(m.target[s]) == slot {
			m.target[s] = -1
		}
	}
	m.rebuild()
}

// Len returns the number of participants.
func (m *Mixer) Len() int { return bits.OnesCount32(m.active) }

// SetRole gives slot a role; target is the one participant a RoleWhisper is heard by (ignored
// for other roles). It reports false, changing nothing, for an unused slot, an unknown role or
// a whisper without a valid target.
func (m *Mixer) SetRole(slot int, r Role, target int) bool {
	if !m.inUse(slot) || r <= RoleUnknown || int(r) >= len(roleNames) {
		return false
	}
	if r == RoleWhisper && (!m.inUse(target) || target == slot) {
		return false
	}
	if r != RoleWhisper {
		target = -1
	}
	m.role[slot], m.target[slot] = r, int8(target)
	m.rebuild()
	return true
}

// Role returns slot's role (RoleUnknown for an unused slot).
func (m *Mixer) Role(slot int) Role {
	if !m.inUse(slot) {
		return RoleUnknown
	}
	return m.role[slot]
}

// Hears reports whether listener hears speaker.
func (m *Mixer) Hears(listener, speaker int) bool {
	return m.inUse(listener) && m.inUse(speaker) && m.hears[listener]&(1<<speaker) != 0
}

func (m *Mixer) inUse(slot int) bool {
	return slot >= 0 && slot < MaxParties && m.active&(1<<slot) != 0
}

// rebuild derives the hear matrix from the roles.
func (m *Mixer) rebuild() {
	for l := range MaxParties {
		m.hears[l] = 0
		if !m.inUse(l) || m.role[l] == RoleHeld {
			continue
		}
		for s := range MaxParties {
			if s != l && m.inUse(s) && m.speaksTo(s, l) {
				m.hears[l] |= 1 << s
			}
		}
	}
}

func (m *Mixer) speaksTo(speaker, listener int) bool {
	switch m.role[speaker] {
	case RoleTalk:
		return true
	case RoleWhisper:
		return int(m.target[speaker]) == listener
	default:
		return false
	}
}

// Mix mixes one 20 ms frame. in[slot] is the participant's frame of FrameSamples mu-law bytes,
// or nil (or any other length) when it sent none this time: it counts as silence. Each used
// slot's out[slot] of FrameSamples bytes receives what that participant hears; a slot whose
// out is missing or the wrong length is skipped. in and out are indexed by slot and may be
// shorter than MaxParties.
func (m *Mixer) Mix(in, out [][]byte) {
	var present uint32 // speakers with a frame
	for s := range min(len(in), MaxParties) {
		if m.inUse(s) && len(in[s]) == FrameSamples {
			present |= 1 << s
		}
	}
	var decoded uint32
	for l := range min(len(out), MaxParties) {
		dst := out[l]
		if !m.inUse(l) || len(dst) != FrameSamples {
			continue
		}
		voices := m.hears[l] & present
		switch bits.OnesCount32(voices) {
		case 0:
			FillSilence(dst)
			continue
		case 1:
			copy(dst, in[bits.TrailingZeros32(voices)])
			continue
		}
		// Decode each voice once, however many listeners hear it.
		for need := voices &^ decoded; need != 0; need &= need - 1 {
			s := bits.TrailingZeros32(need)
			lin, src := &m.lin[s], in[s]
			for i := range lin {
				lin[i] = ulawLinear[src[i]]
			}
			decoded |= 1 << s
		}
		sum := &m.sum
		first := bits.TrailingZeros32(voices)
		for i, v := range &m.lin[first] {
			sum[i] = int32(v)
		}
		for rest := voices & (voices - 1); rest != 0; rest &= rest - 1 {
			for i, v := range &m.lin[bits.TrailingZeros32(rest)] {
				sum[i] += int32(v)
			}
		}
		for i, v := range sum {
			dst[i] = EncodeUlaw(int16(max(min(v, 32767), -32768)))
		}
	}
}

// ulawLinear is DecodeUlaw as a table, for the mixer's inner loop.
var ulawLinear = func() (t [256]int16) {
	for b := range t {
		t[b] = DecodeUlaw(byte(b))
	}
	return t
}()
