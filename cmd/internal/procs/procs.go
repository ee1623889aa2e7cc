// Package procs gives a Switchboard process more Ps than it has cores while many calls are
// bridged, and the runtime's default back when they are fewer. GOMAXPROCS is a decision for
// the whole process, so it is taken here, by the commands (cmd/switchboard, cmd/bridgeload),
// and not by a library: the media plane only reports how many bridges are live
// (webrtc.EngineOptions.OnBridges), and a Controller decides.
package procs

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

// Controller raises and restores GOMAXPROCS as the number of live bridges changes.
type Controller struct {
	set       func(int) int
	restore   func()
	fixed     bool // the operator chose GOMAXPROCS
	busyProcs int
	log       *slog.Logger

	mu     sync.Mutex
	raised bool
}

// New returns the process's controller, logging its changes to log. Whether the operator
// chose GOMAXPROCS is read from the process's own environment, not from a getenv passed to
// run: that environment is the one the Go runtime read it from.
func New(log *slog.Logger) *Controller {
	return &Controller{
		set:       runtime.GOMAXPROCS,
		restore:   runtime.SetDefaultGOMAXPROCS,
		fixed:     os.Getenv("GOMAXPROCS") != "",
		busyProcs: busyProcsPerCPU * runtime.NumCPU(),
		log:       log,
	}
}

// Bridges takes the number of bridges live now; it is the media plane's hook
// (webrtc.EngineOptions.OnBridges), which calls it one change at a time.
func (c *Controller) Bridges(live int) {
	if c.fixed {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.raised && live >= busyBridges && c.busyProcs > runtime.GOMAXPROCS(0):
		c.raised = true
		was := c.set(c.busyProcs)
		c.log.Info("many calls bridged: running with more Ps than cores, for media latency",
			"bridges", live, "gomaxprocs", c.busyProcs, "was", was)
	case c.raised && live <= busyBridges/2:
		c.raised = false
		c.restore()
		c.log.Info("fewer calls bridged: back to the default GOMAXPROCS", "bridges", live,
			"gomaxprocs", runtime.GOMAXPROCS(0))
	}
}
