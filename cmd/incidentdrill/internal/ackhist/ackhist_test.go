package ackhist

import (
	"math"
	"testing"
)

func TestParseBucketAndSumUp(t *testing.T) {
	lines := []string{
		`switchboard_callback_ack_seconds_bucket{route="status",le="0.005"} 90`,
		`switchboard_callback_ack_seconds_bucket{route="status",le="0.05"} 99`,
		`switchboard_callback_ack_seconds_bucket{route="status",le="+Inf"} 100`,
		`switchboard_callback_ack_seconds_count{route="status"} 100`,
		`switchboard_callback_ack_seconds_bucket{route="status",le="x"} 1`,
	}
	h := Histogram{}
	for _, l := range lines {
		route, le, v, ok := ParseBucket(l)
		if !ok {
			continue
		}
		if route != "status" {
			t.Fatalf("route %q from %q", route, l)
		}
		h[le] += v
	}
	if len(h) != 3 || h[math.Inf(1)] != 100 || h.Count() != 100 {
		t.Fatalf("histogram %v", h)
	}
	if got := h.Quantile(.5); got != "<= 5ms" {
		t.Errorf("p50 %s", got)
	}
	if got := h.Quantile(.995); got != "over 50ms" {
		t.Errorf("p99.5 %s", got)
	}
	all := map[string]Histogram{}
	Add(all, map[string]Histogram{"status": h})
	Add(all, map[string]Histogram{"status": h})
	if all["status"].Count() != 200 {
		t.Fatalf("sum %v", all)
	}
	if d := all["status"].Minus(h); d.Count() != 100 {
		t.Fatalf("difference %v", d)
	}
	if got := Line(map[string]Histogram{"status": h, "events": {}}); got != "status 100: p50 <= 5ms, p99 <= 50ms" {
		t.Errorf("line %q", got)
	}
}
