package webrtc

import (
	"log/slog"
	"os"
	"runtime"
	"sync"
)

// While many calls are bridged, the process runs with more Ps than it has cores.
//
// Every packet from an agent crosses a chain of goroutines (pion's UDP mux, ICE, SRTP, the
// bridge's reader). With as many Ps as cores and hundreds of calls, each P nearly always has
// a runnable goroutine, so the scheduler rarely reaches the network poller (a parked reader
// is then only woken when sysmon polls, up to 10 ms later: golang/go#51651) and a readied
// goroutine waits behind a long local queue. bridgeload, 300 calls on 2 cores: the p99 from
// the agent's packet to the carrier leg was 8 to 15 ms with 2 Ps, 3.4 to 4.2 ms with 6 and
// 1.7 to 2.0 ms with 8, for about the same CPU. The HTTP callback path pays for extra Ps
// (more CPU per callback), so they are added only while at least busyBridges bridges are
// live, and taken away again below half that. An operator's GOMAXPROCS is never overridden.
const (
	busyBridges     = 50
	busyProcsPerCPU = 4
)

var procs = procController{
	set:       runtime.GOMAXPROCS,
	restore:   runtime.SetDefaultGOMAXPROCS,
	fixed:     os.Getenv("GOMAXPROCS") != "",
	busyProcs: busyProcsPerCPU * runtime.NumCPU(),
}

type procController struct {
	set       func(int) int
	restore   func()
	fixed     bool // the operator chose GOMAXPROCS
	busyProcs int

	mu      sync.Mutex
	bridges int
	raised  bool
}

func (c *procController) bridgeStarted() { c.change(+1) }
func (c *procController) bridgeEnded()   { c.change(-1) }

func (c *procController) change(delta int) {
	if c.fixed {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bridges += delta
	switch {
	case !c.raised && c.bridges >= busyBridges && c.busyProcs > runtime.GOMAXPROCS(0):
		c.raised = true
		was := c.set(c.busyProcs)
		slog.Info("many calls bridged: running with more Ps than cores, for media latency",
			"bridges", c.bridges, "gomaxprocs", c.busyProcs, "was", was)
	case c.raised && c.bridges <= busyBridges/2:
		c.raised = false
		c.restore()
		slog.Info("fewer calls bridged: back to the default GOMAXPROCS", "bridges", c.bridges,
			"gomaxprocs", runtime.GOMAXPROCS(0))
	}
}
