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
	"runtime/pprof"
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
	defer func() { _ = server.Close() }() // the run is over; a close error changes no figure
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
	defer func() { _ = far.close() }() // as above

	callerVoice := make([]byte, media.FrameSamples)
	_, _ = media.NewTone(1000, 0.5).Read(callerVoice) // a tone never runs out and never fails

	_, _ = fmt.Fprintf(stdout, "bridgeload: %d calls, %v window, %d-core %s/%s, GOMAXPROCS %d, %s\n",
		cfg.calls, cfg.duration, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version()) // progress on the terminal; the report itself returns its write error
	where := "in this process"
	if cfg.agentsProcess {
		where = "in a child process"
	}
	_, _ = fmt.Fprintf(stdout, "agent peers share UDP port %d; simulated agents run %s, one ephemeral port each; RTCP reports %v\n",
		cfg.port, where, map[bool]string{false: "off", true: "on"}[cfg.rtcp]) // progress on the terminal; the report itself returns its write error

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
	_, _ = fmt.Fprintf(stdout, "agents connected: %d/%d in %v (offer to connected p50 %v, p99 %v)\n",
		connected, cfg.calls, time.Since(connectStart).Round(time.Millisecond),
		quantile(connectTimes, 0.5), quantile(connectTimes, 0.99)) // progress on the terminal; the report itself returns its write error
	if len(failures) > 0 {
		_, _ = fmt.Fprintf(stdout, "  %d failed, first: %v\n", len(failures), failures[0]) // progress on the terminal; the report itself returns its write error
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
		defer func() { _ = f.Close() }() // the profile is written or the error returned first
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
			_ = far.activate(i, false) // stopping the feed: a far side that is gone has stopped already
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
	if err := report(stdout, cfg, calls, agentSide, live, cpu, wall, rss-baseRSS, heap-baseHeap, goroutines, allocs); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	// The machine may be shared: what else ran says how much the numbers above are to trust.
	_, _ = fmt.Fprintf(stdout, "machine: all processes used %.2f cores during the window, this one %.2f with GOMAXPROCS %d (load average now %s); "+
		"scheduler latency (runnable -> running) in this process: %s\n",
		host.Seconds()/wall.Seconds(), cpu.Seconds()/wall.Seconds(), procsInWindow, loadAvg(), schedLatency()) // progress on the terminal; the report itself returns its write error
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
	_ = far.activate(i, true) // a call whose far side cannot start counts as undelivered frames
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
				_ = c.peer.Close() // the run is over; a close error changes no figure
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
		_ = f.Close() // writing failed: that error is the one to report
		return err
	}
	return f.Close()
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }() // the run is over; a close error changes no figure
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
