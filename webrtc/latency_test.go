package webrtc

import (
	"sync"
	"testing"
	"time"
)

func TestLatencyHistogramQuantiles(t *testing.T) {
	var h LatencyHistogram
	for i := 1; i <= 1000; i++ {
		h.Observe(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	if s.Count() != 1000 || s.Max != time.Millisecond {
		t.Fatalf("count %d max %v", s.Count(), s.Max)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := s.Quantile(tt.q)
		if got < tt.want || float64(got) > float64(tt.want)*1.125 {
			t.Errorf("q%.2f = %v, want %v .. +12.5%%", tt.q, got, tt.want)
		}
	}

	var other LatencyHistogram
	other.Observe(time.Minute)
	o := other.Snapshot()
	s.Merge(&o)
	if s.Count() != 1001 || s.Max != time.Minute || s.Quantile(1) != time.Minute {
		t.Errorf("after merge: count %d max %v q1 %v", s.Count(), s.Max, s.Quantile(1))
	}
	var empty LatencySnapshot
	if empty.Quantile(0.5) != 0 {
		t.Error("quantile of nothing")
	}
}

func TestLatencyHistogramExtremesAndConcurrency(t *testing.T) {
	var h LatencyHistogram
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				h.Observe(time.Duration(i))
			}
		})
	}
	wg.Wait()
	h.Observe(-time.Second)
	h.Observe(time.Hour)
	s := h.Snapshot()
	if s.Count() != 4002 || s.Max != time.Hour {
		t.Errorf("count %d max %v", s.Count(), s.Max)
	}
	if q := s.Quantile(0.5); q > 1200*time.Nanosecond {
		t.Errorf("median of sub-microsecond values = %v", q)
	}
}
