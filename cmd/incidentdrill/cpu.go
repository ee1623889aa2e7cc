package main

import (
	"syscall"
	"time"
)

// selfCPU is this process's CPU time: the simulated carriers, the proxy and the load.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
