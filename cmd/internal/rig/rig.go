// Package rig is what the load commands and the drill share to run Switchboard as a real
// process on this machine: building it, finding a free port, waiting for it, and reading
// how much CPU a process used.
package rig

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BuildSwitchboard compiles ./cmd/switchboard of this module into dir and returns the
// binary's path. Build output goes to stderr.
func BuildSwitchboard(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	bin := filepath.Join(dir, "switchboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/switchboard/switchboard/cmd/switchboard")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/switchboard (run from inside the module, or pass -bin): %w", err)
	}
	return bin, nil
}

// FreeAddr returns a loopback TCP address nobody listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }() // it only held the port while it was read
	return l.Addr().String(), nil
}

// WaitFor polls ready until it is true or within has passed (or ctx ended).
func WaitFor(ctx context.Context, within time.Duration, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for !ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// CPUTime is a process's user+system CPU time so far, from /proc (0 for pid 0, or where
// there is no /proc).
func CPUTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
