package main

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/webrtc"
)

// A frame's stamp, in its first bytes: a marker, the sequence number + 1, and the wall-clock
// time it was sent (ns). Wall-clock, so that a receiver in another process on the same
// machine can time it.
const (
	stampA, stampB = 0xA5, 0x5A
	stampLen       = 14
)

func stamp(frame []byte, seq int, sentAt int64) {
	frame[0], frame[1] = stampA, stampB
	binary.BigEndian.PutUint32(frame[2:], uint32(seq+1))
	binary.BigEndian.PutUint64(frame[6:], uint64(sentAt))
}

func unstamp(frame []byte) (seq int, sentAt int64, ok bool) {
	if len(frame) < stampLen || frame[0] != stampA || frame[1] != stampB {
		return 0, 0, false
	}
	n := int(binary.BigEndian.Uint32(frame[2:]))
	return n - 1, int64(binary.BigEndian.Uint64(frame[6:])), n > 0
}

// sender numbers one direction's frames.
type sender struct{ sent atomic.Int64 }

// stamp stamps frame with the next sequence number and the time now, unless limit frames
// were stamped already.
func (s *sender) stamp(frame []byte, limit int) {
	if seq := s.sent.Load(); seq < int64(limit) {
		stamp(frame, int(seq), time.Now().UnixNano())
		s.sent.Store(seq + 1)
	}
}

// arrival is one direction's receiving end: it counts each stamped frame once and observes
// its time in flight.
type arrival struct {
	seen  []atomic.Bool
	count atomic.Int64
	dup   atomic.Int64
	first atomic.Int64 // wall-clock ns of the first arrival
	lat   webrtc.LatencyHistogram
}

func newArrival(frames int) *arrival { return &arrival{seen: make([]atomic.Bool, frames)} }

// frame takes a received frame at wall-clock time now (ns).
func (a *arrival) frame(frame []byte, now int64) {
	seq, sentAt, ok := unstamp(frame)
	if !ok || seq >= len(a.seen) {
		return
	}
	if a.seen[seq].Swap(true) {
		a.dup.Add(1)
		return
	}
	a.count.Add(1)
	a.first.CompareAndSwap(0, now)
	a.lat.Observe(time.Duration(max(now-sentAt, 0)))
}
