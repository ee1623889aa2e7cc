// Package redistest gives tests a real Redis: the one REDIS_URL names, or a redis-server
// from PATH that it starts on a free port in a temporary directory for one test binary.
// Tests never skip for lack of Redis; they fail and say how to install it.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// server is the Redis of this test binary, set once by Main.
var server struct {
	url  string
	desc string
	err  error
}

var namespaces atomic.Int64

// Main wraps testing.M.Run: it finds or starts Redis, runs the tests, and stops the server it
// started. Use it from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	stop := start()
	defer stop()
	if server.err == nil {
		fmt.Fprintf(os.Stderr, "redistest: %s\n", server.desc)
	}
	return m.Run()
}

// URL returns the Redis URL for this test, or fails the test with what to install.
func URL(tb testing.TB) string {
	tb.Helper()
	if server.err != nil {
		tb.Fatalf("redistest: %v", server.err)
	}
	if server.url == "" {
		tb.Fatal("redistest: call redistest.Main from TestMain")
	}
	return server.url
}

// Namespace returns a key prefix no other test in this binary uses, so tests can share a
// server and run in parallel.
func Namespace(tb testing.TB) string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), namespaces.Add(1))
}

// Describe says which Redis the tests use, for test logs.
func Describe() string { return server.desc }

func start() (stop func()) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		server.url, server.desc = url, "using REDIS_URL"
		return func() {}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		server.err = fmt.Errorf("no Redis for the tests: set REDIS_URL, or install redis-server " +
			"(Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis); " +
			"`make test` installs it when it may")
		return func() {}
	}
	p, err := newProcess(bin)
	if err != nil {
		server.err = err
		return func() {}
	}
	if err := p.start(); err != nil {
		server.err = err
		return p.remove
	}
	version, _ := exec.Command(bin, "--version").Output()
	server.url = p.url()
	server.desc = fmt.Sprintf("started %s (%s) on %s", bin, strings.TrimSpace(string(version)), p.addr)
	return p.remove
}

// process is one redis-server on a fixed loopback port in its own directory.
type process struct {
	bin, dir, addr string
	// durable processes write an append-only file fsynced before every reply, as production
	// Redis behind Switchboard should, so a kill loses nothing that was acknowledged.
	durable bool
	cluster bool
	// replicaOf, when set, starts the process as a replica of that host:port.
	replicaOf string
	// sentinelConf, when set, starts the process as a Sentinel with this configuration
	// (written to a file, which Sentinel rewrites as it learns).
	sentinelConf string
	cmd          *exec.Cmd
}

func newProcess(bin string) (*process, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir) // a temporary directory left behind is harmless
		return nil, err
	}
	return &process{bin: bin, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
}

func (p *process) url() string { return "redis://" + p.addr }

func (p *process) start() error {
	_, port, _ := net.SplitHostPort(p.addr)
	aof := []string{"--appendonly", "no"}
	if p.durable {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	if p.cluster {
		aof = append(aof, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(p.dir, "nodes.conf"))
	}
	// Configured as docs/deploy.md recommends for Switchboard: every call's event log is a small
	// stream, which Redis would otherwise give a 4 KiB node.
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", p.dir, "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(p.dir, "redis.log"), "--stream-node-max-bytes", "512"}, aof...)
	if p.replicaOf != "" {
		host, primaryPort, _ := net.SplitHostPort(p.replicaOf)
		args = append(args, "--replicaof", host, primaryPort)
	}
	if p.sentinelConf != "" {
		conf := filepath.Join(p.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil { // a restart keeps what Sentinel learnt
			if err := os.WriteFile(conf, []byte(p.sentinelConf), 0o600); err != nil {
				return err
			}
		}
		args = []string{conf, "--sentinel", "--port", port, "--bind", "127.0.0.1", "--dir", p.dir,
			"--daemonize", "no", "--logfile", filepath.Join(p.dir, "redis.log")}
	}
	p.cmd = exec.Command(p.bin, args...)
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	if err := waitReady(p.addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
		p.stop()
		return fmt.Errorf("%s did not start on %s: %w\n%s", p.bin, p.addr, err, log)
	}
	return nil
}

func (p *process) stop() {
	if p.cmd != nil {
		_ = p.cmd.Process.Kill() // it may have exited already; Wait tells
		_ = p.cmd.Wait()         // killed: its exit status says nothing
		p.cmd = nil
	}
}

func (p *process) remove() {
	p.stop()
	_ = os.RemoveAll(p.dir) // a temporary directory left behind is harmless
}

// Process is a redis-server started outside a test, for load commands and drills. Durable
// processes fsync an append-only file before every reply.
type Process struct{ p *process }

// StartProcess starts a redis-server from PATH on a free loopback port.
func StartProcess(durable bool) (*Process, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (Debian/Ubuntu: sudo apt-get install -y redis-server)")
	}
	p, err := newProcess(bin)
	if err != nil {
		return nil, err
	}
	p.durable = durable
	if err := p.start(); err != nil {
		p.remove()
		return nil, err
	}
	return &Process{p: p}, nil
}

// URL is the process's redis:// URL; it stays the same across Stop and Start.
func (p *Process) URL() string { return p.p.url() }

// Stop kills the server at once, as a crash would.
func (p *Process) Stop() { p.p.stop() }

// Start starts the server again after Stop.
func (p *Process) Start() error { return p.p.start() }

// PID is the server's process id (0 while stopped).
func (p *Process) PID() int {
	if p.p.cmd == nil || p.p.cmd.Process == nil {
		return 0
	}
	return p.p.cmd.Process.Pid
}

// Close stops the server and removes its directory.
func (p *Process) Close() { p.p.remove() }

// Cluster is a Redis Cluster of three masters on loopback, for tests that prove the scripts
// keep to one hash slot. It is removed when the test ends.
type Cluster struct {
	procs []*process
}

// NewCluster starts three cluster-enabled redis-servers and joins them with redis-cli.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, cli := serverAndCLI(tb)
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range 3 {
		p, err := newProcess(bin)
		if err != nil {
			tb.Fatal(err)
		}
		p.cluster = true
		tb.Cleanup(p.remove)
		if err := p.start(); err != nil {
			tb.Fatal(err)
		}
		c.procs = append(c.procs, p)
		args = append(args, p.addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must see the cluster as ok (and know every slot), not just the first one:
	// until then a node answers CLUSTERDOWN.
	deadline := time.Now().Add(20 * time.Second)
	for i := range c.procs {
		for {
			out, _ := exec.Command(cli, "-h", "127.0.0.1", "-p", c.port(i), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") && strings.Contains(string(out), "cluster_slots_ok:16384") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %d did not become ok:\n%s", i, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

func (c *Cluster) port(i int) string {
	_, port, _ := net.SplitHostPort(c.procs[i].addr)
	return port
}

// Addrs is the cluster as REDIS_URL takes it: host:port,host:port,host:port.
func (c *Cluster) Addrs() string {
	var addrs []string
	for _, p := range c.procs {
		addrs = append(addrs, p.addr)
	}
	return strings.Join(addrs, ",")
}

// Server is a redis-server of one test's own, which the test may kill and start again on the
// same port to see what happens when Redis goes away. It runs with appendonly yes and
// appendfsync always, so what it acknowledged survives the kill.
type Server struct {
	tb testing.TB
	p  *process
}

// NewServer starts a redis-server for this test alone; it is removed when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: this test needs redis-server on PATH (Debian/Ubuntu: sudo apt-get install -y redis-server)")
	}
	p, err := newProcess(bin)
	if err != nil {
		tb.Fatal(err)
	}
	p.durable = true
	tb.Cleanup(p.remove)
	if err := p.start(); err != nil {
		tb.Fatal(err)
	}
	return &Server{tb: tb, p: p}
}

// URL is the server's redis:// URL; it stays the same across Stop and Start.
func (s *Server) URL() string { return s.p.url() }

// Stop kills the server at once, as a crash would.
func (s *Server) Stop() { s.p.stop() }

// Start starts the server again after Stop.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.p.start(); err != nil {
		s.tb.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // it only held the port while it was read
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady pings with a raw RESP PING so this package needs no client library.
func waitReady(addr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second)) // a closed connection fails the read it bounds
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, rerr := c.Read(buf)
			_ = c.Close() // a probe connection; its close error says nothing about the server
			if err == nil && rerr == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return nil
			}
			last = fmt.Errorf("ping answered %q: %w", buf[:n], errors.Join(err, rerr))
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// MainNoLeaks is Main for packages that start goroutines: after the package's tests it fails
// the run if any goroutine they started is still alive (go.uber.org/goleak).
func MainNoLeaks(m *testing.M) {
	goleak.VerifyTestMain(mainRunner{m})
}

type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int { return Main(r.m) }

// serverAndCLI finds redis-server and redis-cli, for the set-ups that drive servers with the
// client (a cluster, a Sentinel), or fails the test with what to install.
func serverAndCLI(tb testing.TB) (server, cli string) {
	tb.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: this test needs redis-server on PATH (Debian/Ubuntu: sudo apt-get install -y redis-server)")
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("redistest: this test needs redis-cli on PATH (Debian/Ubuntu: sudo apt-get install -y redis-tools)")
	}
	return server, cli
}

// Eventually polls cond until it holds and returns how long that took, or fails the test with
// what after within. It is for conditions that settle through real I/O (Redis, Pub/Sub,
// WebSockets, media), which no fake clock can drive: it checks often at first (every
// millisecond) and backs off to every 20 ms, so a quick condition costs little latency and a
// slow one little CPU.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	pause := time.Millisecond
	for !cond() {
		if time.Since(start) > within {
			tb.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
	return time.Since(start)
}
