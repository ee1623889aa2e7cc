package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/webrtc"
)

// report prints what a run measured, and judges it against the goal.

func report(w io.Writer, cfg config, calls []*call, far []agentStats, live int, cpu, wall time.Duration,
	rss, heap uint64, goroutines int, allocs allocCount) error {
	var b strings.Builder // the report is written at once, and its write error returned
	var (
		sentA, gotA, sentC, gotC, dupA, dupC int64
		latA, latC, brA, brC                 webrtc.LatencySnapshot
		setup                                []time.Duration
		dropA, dropC                         uint64
	)
	for i, c := range calls {
		if c.bridge == nil || i >= len(far) {
			continue
		}
		a := far[i]
		sentA += c.toAgent.sent.Load()
		gotA += a.Got
		dupA += a.Dup
		sentC += a.Sent
		gotC += c.atCarrier.count.Load()
		dupC += c.atCarrier.dup.Load()
		latA.Merge(&a.Lat)
		b := c.atCarrier.lat.Snapshot()
		latC.Merge(&b)
		s := c.bridge.Stats()
		brA.Merge(&s.CarrierToAgentLatency)
		brC.Merge(&s.AgentToCarrierLatency)
		dropA += s.DroppedToAgent
		dropC += s.DroppedToCarrier
		if a.First != 0 {
			setup = append(setup, time.Duration(a.First-c.started))
		}
	}
	pct := func(got, sent int64) string {
		if sent == 0 {
			return "n/a"
		}
		return strconv.FormatFloat(100*float64(got)/float64(sent), 'f', 3, 64) + " %"
	}
	q := func(s *webrtc.LatencySnapshot) string {
		return fmt.Sprintf("p50 %v  p99 %v  max %v", round(s.Quantile(0.5)), round(s.Quantile(0.99)), round(s.Max))
	}
	fmt.Fprintf(&b, "calls bridged: %d (first frame reached the agent in %d)\n", live, len(setup))
	// A carrier feeder that falls behind its ticker skips ticks: fewer frames sent than a
	// steady 50 per second is itself a sign the process is saturated.
	var expected float64
	for _, c := range calls {
		if c.bridge != nil {
			expected += float64(c.stopped-c.started)/float64(20*time.Millisecond) + 1
		}
	}
	fmt.Fprintf(&b, "carrier feeders sent %d frames, %.1f %% of a steady 50 per second per call\n",
		sentA, 100*float64(sentA)/expected)
	fmt.Fprintf(&b, "setup, stream start -> first frame at agent: p50 %v  p99 %v  max %v\n",
		round(quantile(setup, 0.5)), round(quantile(setup, 0.99)), round(quantile(setup, 1)))
	fmt.Fprintf(&b, "carrier -> agent: %d/%d frames delivered = %s (dropped in bridge %d, duplicates %d)\n",
		gotA, sentA, pct(gotA, sentA), dropA, dupA)
	fmt.Fprintf(&b, "agent -> carrier: %d/%d frames delivered = %s (dropped in bridge %d, duplicates %d)\n",
		gotC, sentC, pct(gotC, sentC), dropC, dupC)
	fmt.Fprintln(&b, "added latency through the server (the goal):")
	fmt.Fprintf(&b, "  carrier -> agent, frame into the bridge -> RTP packet on the wire to the agent: %s\n", q(&brA))
	fmt.Fprintf(&b, "  agent -> carrier, the agent sends its RTP packet -> the carrier leg has the frame: %s\n", q(&latC))
	fmt.Fprintf(&b, "end to end, carrier -> agent, frame into the bridge -> the simulated browser has it: %s\n", q(&latA))
	fmt.Fprintf(&b, "inside the bridge only, agent RTP read -> carrier leg has it: %s\n", q(&brC))
	cores := cpu.Seconds() / wall.Seconds()
	fmt.Fprintf(&b, "CPU (this process): %.2f cores over %v = %.3f %% of a core per call (%.1f ms CPU per call-second)\n",
		cores, wall.Round(time.Millisecond), 100*cores/float64(max(live, 1)), 1000*cores/float64(max(live, 1)))
	if live > 0 {
		perFrame := float64(live) * 2 * 50 * wall.Seconds() // frames in the window, both ways
		fmt.Fprintf(&b, "allocations in the window (this process): %.1f objects, %.0f bytes per frame forwarded\n",
			float64(allocs.objects)/perFrame, float64(allocs.bytes)/perFrame)
	}
	fmt.Fprintf(&b, "memory (this process): RSS +%.1f MB = %.2f MB per call; heap in use +%.1f MB = %.2f MB per call; %d goroutines\n",
		mb(rss), mb(rss)/float64(max(live, 1)), mb(heap), mb(heap)/float64(max(live, 1)), goroutines)
	if !cfg.agentsProcess {
		fmt.Fprintln(&b, "note: this process runs both ends (the agents' PeerConnections count too), so CPU and memory per call"+
			" include the load generator, about twice the server's share.")
	} else {
		fmt.Fprintln(&b, "note: the agents ran in a child process on the same cores; this process is the server's side and the carrier simulation.")
	}
	goal := live >= cfg.calls && gotA*1000 >= sentA*999 && gotC*1000 >= sentC*999 &&
		brA.Quantile(0.99) < 5*time.Millisecond && latC.Quantile(0.99) < 5*time.Millisecond &&
		quantile(setup, 1) < 100*time.Millisecond
	fmt.Fprintf(&b, "goal (all calls, >= 99.9 %% delivered, p99 added latency < 5 ms, setup < 100 ms): %s\n",
		map[bool]string{true: "met", false: "NOT met"}[goal])
	_, err := io.WriteString(w, b.String())
	return err
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d
	}
}
