package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ackHistogram is switchboard_callback_ack_seconds of one route, summed over instances: the
// time from receiving a carrier callback to acknowledging it, as Switchboard measures it. It
// says whether a slow callback was slow in Switchboard or on the carrier's side.
type ackHistogram map[float64]float64 // upper bound (+Inf included) -> cumulative count

// scrapeAcks reads the ack histograms of every running instance, by route.
func (s *stack) scrapeAcks(ctx context.Context) map[string]ackHistogram {
	out := map[string]ackHistogram{}
	for _, in := range s.instances {
		add(out, s.scrapeOne(ctx, in))
	}
	return out
}

// scrapeOne reads one instance's ack histograms.
func (s *stack) scrapeOne(ctx context.Context, in *instance) map[string]ackHistogram {
	out := map[string]ackHistogram{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.url()+"/metrics", nil)
	resp, err := probe.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		route, le, v, ok := parseBucket(sc.Text())
		if !ok {
			continue
		}
		if out[route] == nil {
			out[route] = ackHistogram{}
		}
		out[route][le] += v
	}
	return out
}

// retire keeps the histograms of an instance about to stop, for the whole run's sum.
func (s *stack) retire(hs map[string]ackHistogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired == nil {
		s.retired = map[string]ackHistogram{}
	}
	add(s.retired, hs)
}

// runAcks is the whole run's histograms: the running instances' and their earlier lives'.
func (s *stack) runAcks(ctx context.Context) map[string]ackHistogram {
	out := s.scrapeAcks(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	add(out, s.retired)
	return out
}

func add(to, from map[string]ackHistogram) {
	for route, h := range from {
		if to[route] == nil {
			to[route] = ackHistogram{}
		}
		for le, v := range h {
			to[route][le] += v
		}
	}
}

// parseBucket reads one line such as
// switchboard_callback_ack_seconds_bucket{route="status",le="0.005"} 42
func parseBucket(line string) (route string, le, v float64, ok bool) {
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

// minus is h less an earlier scrape: what happened between the two. An instance that
// restarted in between starts again from zero, which makes its share a little short.
func (h ackHistogram) minus(earlier ackHistogram) ackHistogram {
	out := ackHistogram{}
	for le, v := range h {
		out[le] = max(v-earlier[le], 0)
	}
	return out
}

// quantile is the upper bound of the bucket holding the q-quantile: "at most this long".
func (h ackHistogram) quantile(q float64) string {
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

func (h ackHistogram) count() int {
	var top float64
	for le, v := range h {
		if math.IsInf(le, 1) {
			top = v
		}
	}
	return int(top)
}

// ackLine sums up the ack histograms by route.
func ackLine(hs map[string]ackHistogram) string {
	routes := make([]string, 0, len(hs))
	for r := range hs {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	var parts []string
	for _, r := range routes {
		h := hs[r]
		if h.count() == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d: p50 %s, p99 %s", r, h.count(), h.quantile(.5), h.quantile(.99)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
