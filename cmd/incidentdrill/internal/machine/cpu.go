package machine

import (
	"syscall"
	"time"
)

// SelfCPU is this process's CPU time: in the drill, the simulated carriers, the proxy and
// the load.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
