package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuMeter reads the CPU time the server, Redis and this load generator spent during a
// phase, from /proc. CPU per callback is steadier than throughput on a busy machine, and says
// where the time goes: on one machine the three share the cores.
type cpuMeter struct {
	server, redis                 int
	serverFrom, redisFrom, myFrom time.Duration
}

func startCPU(server, redis int) cpuMeter {
	return cpuMeter{server: server, redis: redis, serverFrom: cpuTime(server), redisFrom: cpuTime(redis),
		myFrom: cpuTime(os.Getpid())}
}

func (m cpuMeter) line(callbacks int) string {
	if m.server == 0 || callbacks == 0 {
		return "  (CPU not measured: the server was not started by this command)"
	}
	per := func(from time.Duration, pid int) float64 {
		return float64(cpuTime(pid)-from) / float64(time.Microsecond) / float64(callbacks)
	}
	s := fmt.Sprintf("  CPU per callback: server %.1f µs", per(m.serverFrom, m.server))
	if m.redis != 0 {
		s += fmt.Sprintf(", redis-server %.1f µs", per(m.redisFrom, m.redis))
	}
	return s + fmt.Sprintf(", load generator %.1f µs", per(m.myFrom, os.Getpid()))
}

// cpuTime is a process's user+system CPU time (Linux /proc; 0 elsewhere or for pid 0).
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
