// Package ackhist reads Switchboard's switchboard_callback_ack_seconds histograms from its
// Prometheus text and sums them up for the drill's report: the time from receiving a carrier
// callback to acknowledging it, as Switchboard measures it.
package ackhist

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Histogram is switchboard_callback_ack_seconds of one route, summed over instances: the
// time from receiving a carrier callback to acknowledging it, as Switchboard measures it. It
// says whether a slow callback was slow in Switchboard or on the carrier's side.
type Histogram map[float64]float64 // upper bound (+Inf included) -> cumulative count

// Add sums from into to, route by route.
func Add(to, from map[string]Histogram) {
	for route, h := range from {
		if to[route] == nil {
			to[route] = Histogram{}
		}
		for le, v := range h {
			to[route][le] += v
		}
	}
}

// ParseBucket reads one line such as
// switchboard_callback_ack_seconds_bucket{route="status",le="0.005"} 42
func ParseBucket(line string) (route string, le, v float64, ok bool) {
	rest, found := strings.CutPrefix(line, "switchboard_callback_ack_seconds_bucket{")
	if !found {
		return "", 0, 0, false
	}
	labels, value, found := strings.Cut(rest, "} ")
	if !found {
		return "", 0, 0, false
	}
	for _, kv := range strings.Split(labels, ",") {
		k, val, _ := strings.Cut(kv, "=")
		val = strings.Trim(val, `"`)
		switch k {
		case "route":
			route = val
		case "le":
			if val == "+Inf" {
				le = math.Inf(1)
			} else if le, ok = parseFloat(val); !ok {
				return "", 0, 0, false
			}
		}
	}
	v, ok = parseFloat(value)
	return route, le, v, ok && route != ""
}

func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil
}

// Minus is h less an earlier scrape: what happened between the two. An instance that
// restarted in between starts again from zero, which makes its share a little short.
func (h Histogram) Minus(earlier Histogram) Histogram {
	out := Histogram{}
	for le, v := range h {
		out[le] = max(v-earlier[le], 0)
	}
	return out
}

// Quantile is the upper bound of the bucket holding the q-quantile: "at most this long".
func (h Histogram) Quantile(q float64) string {
	bounds := make([]float64, 0, len(h))
	for le := range h {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || h[bounds[len(bounds)-1]] == 0 {
		return "-"
	}
	total := h[bounds[len(bounds)-1]]
	for _, le := range bounds {
		if h[le] >= q*total {
			if math.IsInf(le, 1) {
				return fmt.Sprintf("over %v", time.Duration(bounds[len(bounds)-2]*float64(time.Second)))
			}
			return "<= " + time.Duration(le*float64(time.Second)).String()
		}
	}
	return "-"
}

// Count is how many callbacks h counted.
func (h Histogram) Count() int {
	var top float64
	for le, v := range h {
		if math.IsInf(le, 1) {
			top = v
		}
	}
	return int(top)
}

// Line sums up histograms by route, for one line of a report.
func Line(hs map[string]Histogram) string {
	routes := make([]string, 0, len(hs))
	for r := range hs {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	var parts []string
	for _, r := range routes {
		h := hs[r]
		if h.Count() == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d: p50 %s, p99 %s", r, h.Count(), h.Quantile(.5), h.Quantile(.99)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
