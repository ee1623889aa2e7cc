// Command bridgeload measures how many bridged calls one Switchboard process carries: N
// simulated agents (agentsim.SimAgent, standing in for browsers) connect over loopback to N
// agent Peers that share one UDP port, and N Bridges join each Peer to a simulated carrier
// media stream that feeds a 20 ms frame every 20 ms. Every frame carries a sequence number
// and its send time in its first bytes, so each one is timed where it lands.
//
//	go run ./cmd/bridgeload -calls 300 -duration 20s
//
// Everything runs in this one process: the agents' PeerConnections and the carrier
// simulation cost CPU and memory too, so the per-call figures are for both ends of a call.
// -agents-process runs the agents in a child process (this binary again) instead, as browsers
// never share the server's process; on one machine that costs more CPU in all (every packet
// then wakes another process), and bridgeload measured no better latency.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/cmd/internal/procs"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/media"
)

func main() {
	if os.Getenv(serveAgentsEnv) != "" {
		if err := serveAgents(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bridgeload agents:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bridgeload:", err)
		os.Exit(1)
	}
}

type config struct {
	calls         int
	duration      time.Duration
	ramp          time.Duration
	port          int
	parallel      int
	rtcp          bool
	agentsProcess bool
	cpuProfile    string
	memProfile    string
	mutexProf     string
	drain         time.Duration
	connectWait   time.Duration
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bridgeload", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&c.calls, "calls", 300, "concurrent bridged calls")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measurement window, after every call has started")
	fs.DurationVar(&c.ramp, "ramp", 2*time.Second, "time over which calls start (carrier streams do not all start in one millisecond)")
	fs.IntVar(&c.port, "port", 0, "UDP port the agent peers share (0: any free port)")
	fs.IntVar(&c.parallel, "parallel", 16, "agents negotiating at once while connecting")
	fs.BoolVar(&c.rtcp, "rtcp", false, "send RTCP reports (webrtc.EngineOptions.RTCPReports) on both ends")
	fs.BoolVar(&c.agentsProcess, "agents-process", false, "run the simulated agents in a child process instead of this one")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the measurement window to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "write an allocation profile at the end of the window to this file")
	fs.StringVar(&c.mutexProf, "mutexprofile", "", "write a mutex contention profile of the window to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.calls < 1 || c.duration <= 0 || c.parallel < 1 {
		return c, errors.New("-calls, -duration and -parallel must be positive")
	}
	c.drain = 500 * time.Millisecond
	c.connectWait = 30 * time.Second
	return c, nil
}

// legFunc adapts a function to webrtc.CarrierLeg.
type legFunc func(ulaw []byte) error

func (f legFunc) SendAudio(ulaw []byte) error { return f(ulaw) }

// call is the server's side of one call, and the carrier's.
type call struct {
	peer    *webrtc.Peer
	bridge  *webrtc.Bridge
	connect time.Duration

	toAgent   sender   // carrier -> agent
	atCarrier *arrival // agent -> carrier
	started   int64    // wall-clock ns when the carrier stream started
	stopped   int64    // when it stopped
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	baseRSS, baseHeap := rssBytes(), heapInuse()

	if cfg.port == 0 {
		if cfg.port, err = freeUDPPort(); err != nil {
			return err
		}
	}
	// The server's engine sizes GOMAXPROCS as Switchboard's does (cmd/internal/procs).
	server, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true, UDPMuxPort: cfg.port, RTCPReports: cfg.rtcp,
		OnBridges: procs.New(slog.Default()).Bridges})
	if err != nil {
		return err
	}
	defer server.Close()
	// Stamps long enough for the whole run; a frame beyond that is simply not stamped.
	frames := int((cfg.ramp+cfg.duration+10*time.Second)/(20*time.Millisecond)) + 1
	var far agents
	if cfg.agentsProcess {
		far, err = startRemoteAgents(cfg.rtcp, frames)
	} else {
		far, err = newLocalAgents(cfg.rtcp, frames)
	}
	if err != nil {
		return err
	}
	defer far.close()

	callerVoice := make([]byte, media.FrameSamples)
	media.NewTone(1000, 0.5).Read(callerVoice)

	fmt.Fprintf(stdout, "bridgeload: %d calls, %v window, %d-core %s/%s, GOMAXPROCS %d, %s\n",
		cfg.calls, cfg.duration, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version())
	where := "in this process"
	if cfg.agentsProcess {
		where = "in a child process"
	}
	fmt.Fprintf(stdout, "agent peers share UDP port %d; simulated agents run %s, one ephemeral port each; RTCP reports %v\n",
		cfg.port, where, map[bool]string{false: "off", true: "on"}[cfg.rtcp])

	// 1. Agents log in: each one's PeerConnection is up before any call reaches it.
	calls := make([]*call, cfg.calls)
	defer closeAll(calls)
	connectStart := time.Now()
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, cfg.parallel)
		failMu   sync.Mutex
		failures []error
	)
	for i := range calls {
		c := &call{atCarrier: newArrival(frames)}
		calls[i] = c
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.connectAgent(ctx, cfg, server, far, i); err != nil {
				failMu.Lock()
				failures = append(failures, err)
				failMu.Unlock()
			}
		})
	}
	wg.Wait()
	connected := 0
	var connectTimes []time.Duration
	for _, c := range calls {
		if c.peer != nil && c.peer.State() == webrtc.PeerStateConnected {
			connected++
			connectTimes = append(connectTimes, c.connect)
		}
	}
	fmt.Fprintf(stdout, "agents connected: %d/%d in %v (offer to connected p50 %v, p99 %v)\n",
		connected, cfg.calls, time.Since(connectStart).Round(time.Millisecond),
		quantile(connectTimes, 0.5), quantile(connectTimes, 0.99))
	if len(failures) > 0 {
		fmt.Fprintf(stdout, "  %d failed, first: %v\n", len(failures), failures[0])
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 2. Calls arrive, spread over the ramp: each carrier stream starts, a bridge joins it to
	// its agent, and the carrier's read loop feeds a frame every 20 ms.
	feedCtx, stopFeeding := context.WithCancel(ctx)
	var feeders sync.WaitGroup
	defer feeders.Wait() // runs after stopFeeding: defers run last first
	defer stopFeeding()
	live := 0
	for i, c := range calls {
		if c.peer == nil || c.peer.State() != webrtc.PeerStateConnected {
			continue
		}
		live++
		// Real streams start at random moments, so their 20 ms frames fall at random phases;
		// a random offset within the frame keeps the ramp from lining every call up.
		delay := cfg.ramp*time.Duration(i)/time.Duration(cfg.calls) + rand.N(20*time.Millisecond)
		feeders.Go(func() { c.carrier(feedCtx, delay, callerVoice, frames, far, i) })
	}
	select {
	case <-time.After(cfg.ramp + 200*time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}

	// 3. The measurement window: every call is up.
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	if cfg.mutexProf != "" {
		runtime.SetMutexProfileFraction(10)
	}
	cpu0, wall0, host0, allocs0 := cpuTime(), time.Now(), hostBusy(), heapAllocs()
	select {
	case <-time.After(cfg.duration):
	case <-ctx.Done():
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	procsInWindow := runtime.GOMAXPROCS(0) // the webrtc package raises it while many calls are bridged
	host := hostBusy() - host0
	allocs := heapAllocs().minus(allocs0)
	if cfg.mutexProf != "" {
		runtime.SetMutexProfileFraction(0)
		if err := writeProfile("mutex", cfg.mutexProf); err != nil {
			return err
		}
	}
	if cfg.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if cfg.memProfile != "" {
		if err := writeProfile("allocs", cfg.memProfile); err != nil {
			return err
		}
	}
	rss, heap, goroutines := rssBytes(), heapInuse(), runtime.NumGoroutine()

	// 4. Stop sending, let what is in flight land, then count.
	for i, c := range calls {
		if c.bridge != nil {
			far.activate(i, false)
		}
	}
	stopFeeding()
	feeders.Wait()
	time.Sleep(cfg.drain) // packets still on their way are not lost
	statsCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agentSide, err := far.stats(statsCtx)
	if err != nil {
		return fmt.Errorf("the agents' figures: %w", err)
	}
	report(stdout, cfg, calls, agentSide, live, cpu, wall, rss-baseRSS, heap-baseHeap, goroutines, allocs)
	// The machine may be shared: what else ran says how much the numbers above are to trust.
	fmt.Fprintf(stdout, "machine: all processes used %.2f cores during the window, this one %.2f with GOMAXPROCS %d (load average now %s); "+
		"scheduler latency (runnable -> running) in this process: %s\n",
		host.Seconds()/wall.Seconds(), cpu.Seconds()/wall.Seconds(), procsInWindow, loadAvg(), schedLatency())
	return ctx.Err()
}

// connectAgent brings up call i's agent and the server's Peer for it, as the signalling
// WebSocket would.
func (c *call) connectAgent(ctx context.Context, cfg config, server *webrtc.Engine, far agents, i int) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.connectWait)
	defer cancel()
	start := time.Now()
	var err error
	if c.peer, err = server.NewPeer(nil); err != nil {
		return err
	}
	offer, err := far.offer(ctx, i)
	if err != nil {
		return err
	}
	answer, err := c.peer.Answer(ctx, offer)
	if err != nil {
		return err
	}
	if err := far.accept(ctx, i, answer); err != nil {
		return err
	}
	for c.peer.State() != webrtc.PeerStateConnected {
		if ctx.Err() != nil {
			return fmt.Errorf("peer: %v", c.peer.State())
		}
		time.Sleep(time.Millisecond)
	}
	c.connect = time.Since(start)
	return nil
}

// carrier is one carrier stream's read loop: after delay the stream starts, a bridge is
// made, and a stamped 20 ms frame goes into bridge.Audio every 20 ms, from one reused buffer.
func (c *call) carrier(ctx context.Context, delay time.Duration, voice []byte, frames int, far agents, i int) {
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return
	}
	c.started = time.Now().UnixNano()
	leg := legFunc(func(ulaw []byte) error {
		c.atCarrier.frame(ulaw, time.Now().UnixNano())
		return nil
	})
	c.bridge = webrtc.NewBridge("load", leg, c.peer, webrtc.BridgeOptions{})
	far.activate(i, true)
	buf := make([]byte, media.FrameSamples)
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		copy(buf, voice)
		c.toAgent.stamp(buf, frames)
		c.bridge.Audio(buf)
		select {
		case <-ctx.Done():
			c.stopped = time.Now().UnixNano()
			return
		case <-ticker.C:
		}
	}
}

func report(w io.Writer, cfg config, calls []*call, far []agentStats, live int, cpu, wall time.Duration,
	rss, heap uint64, goroutines int, allocs allocCount) {
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
	fmt.Fprintf(w, "calls bridged: %d (first frame reached the agent in %d)\n", live, len(setup))
	// A carrier feeder that falls behind its ticker skips ticks: fewer frames sent than a
	// steady 50 per second is itself a sign the process is saturated.
	var expected float64
	for _, c := range calls {
		if c.bridge != nil {
			expected += float64(c.stopped-c.started)/float64(20*time.Millisecond) + 1
		}
	}
	fmt.Fprintf(w, "carrier feeders sent %d frames, %.1f %% of a steady 50 per second per call\n",
		sentA, 100*float64(sentA)/expected)
	fmt.Fprintf(w, "setup, stream start -> first frame at agent: p50 %v  p99 %v  max %v\n",
		round(quantile(setup, 0.5)), round(quantile(setup, 0.99)), round(quantile(setup, 1)))
	fmt.Fprintf(w, "carrier -> agent: %d/%d frames delivered = %s (dropped in bridge %d, duplicates %d)\n",
		gotA, sentA, pct(gotA, sentA), dropA, dupA)
	fmt.Fprintf(w, "agent -> carrier: %d/%d frames delivered = %s (dropped in bridge %d, duplicates %d)\n",
		gotC, sentC, pct(gotC, sentC), dropC, dupC)
	fmt.Fprintln(w, "added latency through the server (the goal):")
	fmt.Fprintf(w, "  carrier -> agent, frame into the bridge -> RTP packet on the wire to the agent: %s\n", q(&brA))
	fmt.Fprintf(w, "  agent -> carrier, the agent sends its RTP packet -> the carrier leg has the frame: %s\n", q(&latC))
	fmt.Fprintf(w, "end to end, carrier -> agent, frame into the bridge -> the simulated browser has it: %s\n", q(&latA))
	fmt.Fprintf(w, "inside the bridge only, agent RTP read -> carrier leg has it: %s\n", q(&brC))
	cores := cpu.Seconds() / wall.Seconds()
	fmt.Fprintf(w, "CPU (this process): %.2f cores over %v = %.3f %% of a core per call (%.1f ms CPU per call-second)\n",
		cores, wall.Round(time.Millisecond), 100*cores/float64(max(live, 1)), 1000*cores/float64(max(live, 1)))
	if live > 0 {
		perFrame := float64(live) * 2 * 50 * wall.Seconds() // frames in the window, both ways
		fmt.Fprintf(w, "allocations in the window (this process): %.1f objects, %.0f bytes per frame forwarded\n",
			float64(allocs.objects)/perFrame, float64(allocs.bytes)/perFrame)
	}
	fmt.Fprintf(w, "memory (this process): RSS +%.1f MB = %.2f MB per call; heap in use +%.1f MB = %.2f MB per call; %d goroutines\n",
		mb(rss), mb(rss)/float64(max(live, 1)), mb(heap), mb(heap)/float64(max(live, 1)), goroutines)
	if !cfg.agentsProcess {
		fmt.Fprintln(w, "note: this process runs both ends (the agents' PeerConnections count too), so CPU and memory per call"+
			" include the load generator, about twice the server's share.")
	} else {
		fmt.Fprintln(w, "note: the agents ran in a child process on the same cores; this process is the server's side and the carrier simulation.")
	}
	goal := live >= cfg.calls && gotA*1000 >= sentA*999 && gotC*1000 >= sentC*999 &&
		brA.Quantile(0.99) < 5*time.Millisecond && latC.Quantile(0.99) < 5*time.Millisecond &&
		quantile(setup, 1) < 100*time.Millisecond
	fmt.Fprintf(w, "goal (all calls, >= 99.9 %% delivered, p99 added latency < 5 ms, setup < 100 ms): %s\n",
		map[bool]string{true: "met", false: "NOT met"}[goal])
}

func closeAll(calls []*call) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, c := range calls {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if c.bridge != nil {
				c.bridge.End()
			}
			if c.peer != nil {
				c.peer.Close()
			}
		})
	}
	wg.Wait()
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

type allocCount struct{ objects, bytes uint64 }

func (a allocCount) minus(b allocCount) allocCount {
	return allocCount{a.objects - b.objects, a.bytes - b.bytes}
}

func heapAllocs() allocCount {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return allocCount{s[0].Value.Uint64(), s[1].Value.Uint64()}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rssBytes reads VmRSS from /proc/self/status (Linux); 0 elsewhere.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// hostBusy is the CPU time every process of the machine used so far (/proc/stat: all but
// idle and iowait); 0 where unavailable.
func hostBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ is 100 on Linux
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// schedLatency summarises how long goroutines waited to run once runnable: the part of the
// added latency that is CPU contention rather than work.
func schedLatency() string {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return "n/a"
	}
	h := s[0].Value.Float64Histogram()
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	at := func(q float64) time.Duration {
		var seen uint64
		for i, c := range h.Counts {
			seen += c
			if float64(seen) >= q*float64(total) {
				return time.Duration(h.Buckets[i+1] * float64(time.Second))
			}
		}
		return 0
	}
	return fmt.Sprintf("p50 %v p99 %v p99.9 %v", round(at(0.5)), round(at(0.99)), round(at(0.999)))
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
