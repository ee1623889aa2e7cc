package main

import (
	"fmt"
	"os"
	"time"

	"github.com/switchboard/switchboard/cmd/internal/rig"
)

// cpuMeter reads the CPU time the server, Redis and this load generator spent during a
// phase, from /proc. CPU per callback is steadier than throughput on a busy machine, and says
// where the time goes: on one machine the three share the cores.
type cpuMeter struct {
	server, redis                 int
	serverFrom, redisFrom, myFrom time.Duration
}

func startCPU(server, redis int) cpuMeter {
	return cpuMeter{server: server, redis: redis, serverFrom: rig.CPUTime(server), redisFrom: rig.CPUTime(redis),
		myFrom: rig.CPUTime(os.Getpid())}
}

func (m cpuMeter) line(callbacks int) string { return m.lineFor(callbacks, true) }

// lineFor is line, with this process's own CPU only when it was the load generator.
func (m cpuMeter) lineFor(callbacks int, generator bool) string {
	if m.server == 0 || callbacks == 0 {
		return "  (CPU not measured: the server was not started by this command)"
	}
	per := func(from time.Duration, pid int) float64 {
		return float64(rig.CPUTime(pid)-from) / float64(time.Microsecond) / float64(callbacks)
	}
	s := fmt.Sprintf("  CPU per callback: server %.1f µs", per(m.serverFrom, m.server))
	if m.redis != 0 {
		r := per(m.redisFrom, m.redis)
		s += fmt.Sprintf(", redis-server %.1f µs (together %.1f µs)", r, r+per(m.serverFrom, m.server))
	}
	if generator {
		s += fmt.Sprintf(", load generator %.1f µs", per(m.myFrom, os.Getpid()))
	}
	return s
}
