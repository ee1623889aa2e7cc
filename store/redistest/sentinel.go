package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the name the Sentinel of NewSentinel knows its primary by.
const SentinelMaster = "switchboard"

// Sentinel is a Redis primary, one replica of it and one Sentinel watching them, all durable
// (append-only, fsynced before every reply), for tests of what a failover does to
// acknowledged writes. It is removed when the test ends.
type Sentinel struct {
	tb                         testing.TB
	cli                        string
	primary, replica, sentinel *process
}

// NewSentinel starts the three servers and waits until the replica is in sync and the
// Sentinel knows it, so that a failover can promote it.
func NewSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	bin, cli := serverAndCLI(tb)
	s := &Sentinel{tb: tb, cli: cli}
	startOne := func(configure func(*process)) *process {
		p, err := newProcess(bin)
		if err != nil {
			tb.Fatal(err)
		}
		p.durable = true
		configure(p)
		tb.Cleanup(p.remove)
		if err := p.start(); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	s.primary = startOne(func(*process) {})
	s.replica = startOne(func(p *process) { p.replicaOf = s.primary.addr })
	host, port, _ := net.SplitHostPort(s.primary.addr)
	// Quorum 1 lets the one Sentinel decide alone; a second without answers marks the primary
	// down, so tests fail over in a few seconds instead of the default 30.
	s.sentinel = startOne(func(p *process) {
		p.sentinelConf = fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 1\n"+
			"sentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 10000\n",
			SentinelMaster, host, port)
	})
	s.WaitReplicaInSync()
	s.until(30*time.Second, "the Sentinel to know the replica", func() (bool, string) {
		out := s.redisCLI(s.sentinel, "SENTINEL", "REPLICAS", SentinelMaster)
		return strings.Contains(out, portOf(s.replica.addr)), out
	})
	return s
}

// URL is REDIS_URL for the set-up: go-redis's failover URL naming the Sentinel.
func (s *Sentinel) URL() string {
	return "redis://" + s.sentinel.addr + "?master_name=" + SentinelMaster
}

// PrimaryAddr and ReplicaAddr are the addresses the servers started as.
func (s *Sentinel) PrimaryAddr() string { return s.primary.addr }
func (s *Sentinel) ReplicaAddr() string { return s.replica.addr }

// KillPrimary kills the primary with SIGKILL, as a crash would.
func (s *Sentinel) KillPrimary() { s.primary.stop() }

// RestartOldPrimary starts the killed primary again on its port. Sentinel turns it into a
// replica of the promoted one, so writes have a replica to wait for again.
func (s *Sentinel) RestartOldPrimary() {
	s.tb.Helper()
	if err := s.primary.start(); err != nil {
		s.tb.Fatal(err)
	}
}

// StopReplica kills the replica; StartReplica starts it again on its port.
func (s *Sentinel) StopReplica() { s.replica.stop() }

func (s *Sentinel) StartReplica() {
	s.tb.Helper()
	if err := s.replica.start(); err != nil {
		s.tb.Fatal(err)
	}
}

// WaitReplicaInSync waits until the primary reports its replica online.
func (s *Sentinel) WaitReplicaInSync() {
	s.tb.Helper()
	s.until(30*time.Second, "the replica to be in sync", func() (bool, string) {
		out := s.redisCLI(s.primary, "INFO", "replication")
		return strings.Contains(out, "state=online"), out
	})
}

// WaitPromoted waits until the Sentinel names the replica as the primary.
func (s *Sentinel) WaitPromoted(within time.Duration) {
	s.tb.Helper()
	s.until(within, "the Sentinel to promote the replica", func() (bool, string) {
		out := s.redisCLI(s.sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		return strings.Contains(out, portOf(s.replica.addr)), out
	})
}

func (s *Sentinel) redisCLI(p *process, args ...string) string {
	out, _ := exec.Command(s.cli, append([]string{"-h", "127.0.0.1", "-p", portOf(p.addr)}, args...)...).CombinedOutput()
	return string(out)
}

// until polls cond, as the Cluster helper does: these are other processes' states, which no
// channel announces.
func (s *Sentinel) until(within time.Duration, what string, cond func() (bool, string)) {
	s.tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: waited %s for %s; last answer:\n%s", within, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
