package webrtc

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A latency histogram cheap enough to update for every frame of every call: one atomic add,
// no lock, no allocation. Buckets are log-linear (each power of two split in 8), so any
// quantile it reports is within 12.5 % above the true value, from 1 µs up to about a minute.

const (
	histSubBits  = 3
	histSub      = 1 << histSubBits
	histMinShift = 10 // values below 2^10 ns (about 1 µs) share the first bucket
	histMaxShift = 36 // values from 2^36 ns (about 69 s) up share the last bucket
	histBuckets  = (histMaxShift - histMinShift + 1) * histSub
)

// LatencyHistogram counts durations. Its zero value is ready; it is safe for concurrent use
// and must not be copied after first use (take a Snapshot instead).
type LatencyHistogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

// Observe records one duration.
func (h *LatencyHistogram) Observe(d time.Duration) {
	h.counts[histBucket(d)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Snapshot copies the counts.
func (h *LatencyHistogram) Snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Max = time.Duration(h.max.Load())
	return s
}

// LatencySnapshot is a LatencyHistogram's counts at one moment. Snapshots of several
// histograms can be merged to read quantiles over all of them.
type LatencySnapshot struct {
	Counts [histBuckets]uint64
	Max    time.Duration
}

// Merge adds o's counts to s.
func (s *LatencySnapshot) Merge(o *LatencySnapshot) {
	for i := range s.Counts {
		s.Counts[i] += o.Counts[i]
	}
	s.Max = max(s.Max, o.Max)
}

// Count is the number of durations observed.
func (s *LatencySnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Quantile returns an upper bound of the q-quantile (0 < q <= 1), never above Max; 0 when
// nothing was observed.
func (s *LatencySnapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			return min(histUpper(i), s.Max)
		}
	}
	return s.Max
}

func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	shift := bits.Len64(v) - 1 // position of the leading 1
	if shift < histMinShift {
		return 0
	}
	if shift > histMaxShift {
		return histBuckets - 1
	}
	sub := int(v>>(shift-histSubBits)) & (histSub - 1)
	return (shift-histMinShift)*histSub + sub
}

// histUpper is the largest duration that falls in bucket i.
func histUpper(i int) time.Duration {
	shift := i/histSub + histMinShift
	sub := uint64(i % histSub)
	lo := (histSub + sub) << (shift - histSubBits)
	return time.Duration(lo + (1 << (shift - histSubBits)) - 1)
}
