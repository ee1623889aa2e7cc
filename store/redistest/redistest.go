// Package redistest gives tests a real Redis: the one REDIS_URL names, or a redis-server
// from PATH that it starts on a free port in a temporary directory for one test binary.
// Tests never skip for lack of Redis; they fail and say how to install it.
package redistest

import (
	"context"
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
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		server.err = err
		return func() {}
	}
	port, err := freePort()
	if err != nil {
		server.err = err
		return func() { os.RemoveAll(dir) }
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		server.err = fmt.Errorf("start %s: %w", bin, err)
		return func() { os.RemoveAll(dir) }
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitReady(addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		server.err = fmt.Errorf("%s did not start on %s: %v\n%s", bin, addr, err, log)
		return stop
	}
	version, _ := exec.Command(bin, "--version").Output()
	server.url = "redis://" + addr
	server.desc = fmt.Sprintf("started %s (%s) on %s", bin, strings.TrimSpace(string(version)), addr)
	return stop
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
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
			c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, rerr := c.Read(buf)
			c.Close()
			if err == nil && rerr == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return nil
			}
			last = fmt.Errorf("ping: %v %v %q", err, rerr, buf[:n])
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return last
}
