package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/cmd/internal/rig"
)

// Probe asks an instance whether it is ready, on a fresh connection each time, so that no
// idle connection outlives the drill.
var Probe = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Instance is one Switchboard process, which the drill may restart on the same address.
type Instance struct {
	Name, Addr string
	Public     string // its front door
	Log        string // its stderr, over all its lives
	bin        string
	env        []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	cpu    time.Duration // CPU time of the lives before this one
}

// URL is the instance's own address, past its front door.
func (in *Instance) URL() string { return "http://" + in.Addr }

func (in *Instance) start(ctx context.Context) error {
	logf, err := os.OpenFile(in.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(in.bin)
	cmd.Env = append(os.Environ(), in.env...)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // start failed: that error is the one to report
		return fmt.Errorf("start %s: %w", in.Name, err)
	}
	exited := make(chan struct{})
	go func() { // owned by the instance: stop waits for exited
		_ = cmd.Wait()   // its exit is recorded by how it was stopped (drain or kill)
		_ = logf.Close() // the log is written by the child; nothing buffered here
		close(exited)
	}()
	in.mu.Lock()
	in.cmd, in.exited = cmd, exited
	in.mu.Unlock()
	err = rig.WaitFor(ctx, 15*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := Probe.Get(in.URL() + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // only the status was wanted
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-exited:
		return fmt.Errorf("%s exited at start-up; see %s", in.Name, in.Log)
	default:
	}
	if err != nil {
		return fmt.Errorf("%s did not become ready: %w (log: %s)", in.Name, err, in.Log)
	}
	return nil
}

// stop sends SIGTERM, lets the instance drain, and kills it if it is still there after the
// drain timeout and a margin.
func (in *Instance) stop() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	before := rig.CPUTime(cmd.Process.Pid) // a draining process does next to nothing more
	in.mu.Lock()
	in.cpu += before
	in.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited already; the wait below tells
	select {
	case <-exited:
	case <-time.After(DrainTimeout + 3*time.Second):
		_ = cmd.Process.Kill() // it did not drain in time; it may have exited meanwhile
		<-exited
	}
}

// CPUUsed is the CPU time the instance used over all its lives so far.
func (in *Instance) CPUUsed() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	total := in.cpu
	if in.cmd != nil {
		total += rig.CPUTime(in.cmd.Process.Pid)
	}
	return total
}

// Release hands the running process over to the caller, who stops it and may wait on exited;
// the stack no longer does. proc is nil when the instance is not running.
func (in *Instance) Release() (proc *os.Process, exited <-chan struct{}) {
	in.mu.Lock()
	defer in.mu.Unlock()
	cmd := in.cmd
	in.cmd = nil
	if cmd == nil {
		return nil, nil
	}
	return cmd.Process, in.exited
}
