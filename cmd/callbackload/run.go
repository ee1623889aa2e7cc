package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/cmd/internal/rig"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

type options struct {
	redisURL    string
	durable     bool
	target      string
	rate        int
	duration    time.Duration
	conns       int
	dupRate     float64
	reorderRate float64
	serveBare   string
	skipBare    bool
	procs       int
	debugAddr   string
	driver      string
	rounds      int
	wrkScript   string
	replayOut   string
	publicURL   string
	signer      string
	serveProto  string
	prototype   bool
	rateOfBare  float64
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("callbackload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis for the Switchboard under test, as REDIS_URL takes it (a Sentinel URL measures WAIT for replicas; SWITCHBOARD_REDIS_MIN_REPLICAS passes through); empty: start a redis-server from PATH")
	fs.BoolVar(&o.durable, "durable", true, "when starting redis-server: appendonly yes, appendfsync always (every acknowledged event is on disk)")
	fs.StringVar(&o.target, "target", "", "base URL of a running Switchboard sharing -redis-url; empty: start one")
	fs.IntVar(&o.rate, "rate", 10000, "callbacks per second of the open-loop (latency) phase; 0 skips it")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each phase")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections (a carrier's pool)")
	fs.Float64Var(&o.dupRate, "dup", 0.05, "share of callbacks delivered twice")
	fs.Float64Var(&o.reorderRate, "reorder", 0.10, "share of calls whose callbacks arrive out of order")
	fs.BoolVar(&o.skipBare, "skip-bare", false, "skip the bare Echo comparison")
	fs.IntVar(&o.procs, "server-procs", 0, "GOMAXPROCS of the started servers (0: Go's default)")
	fs.StringVar(&o.serveBare, "serve-bare", "", "internal: serve the bare 204 handler on this address")
	fs.StringVar(&o.serveProto, "serve-proto", "", "internal: serve the naive prototype on this address")
	fs.Float64Var(&o.rateOfBare, "rate-of-bare", 0, "with -driver wrk: run the open-loop phase at this share of the bare server's median throughput (issue #17: 0.5) instead of -rate")
	fs.BoolVar(&o.prototype, "prototype", false, "with -driver wrk: measure the naive prototype too (plain verification, one pipelined HSET per callback) in each round")
	fs.StringVar(&o.debugAddr, "server-debug-addr", "", "pass SWITCHBOARD_DEBUG_ADDR to the started Switchboard, to profile it")
	fs.StringVar(&o.driver, "driver", "go", "closed-loop load generator: go (this process) or wrk (Debian's wrk replaying cmd/callbackload/wrk/replay.lua, alternating with the bare server)")
	fs.IntVar(&o.rounds, "rounds", 5, "with -driver wrk: alternating Switchboard/bare rounds; the median ratio is printed")
	fs.StringVar(&o.wrkScript, "wrk-script", "", "with -driver wrk: the replay script (default cmd/callbackload/wrk/replay.lua)")
	fs.StringVar(&o.signer, "signer", "auto", "with -driver wrk: who signs the replayed callbacks: official (Twilio's Node helper library, cmd/callbackload/wrk/sign.mjs), own (webhooks.SignTwilio), auto (official when installed)")
	fs.StringVar(&o.replayOut, "replay-out", "", "only write a replay file of signed callbacks for wrk to this path, signed for -public-url (and, given -redis-url, store the carrier they are signed for), and exit")
	fs.StringVar(&o.publicURL, "public-url", "http://127.0.0.1:8080", "with -replay-out: the SWITCHBOARD_PUBLIC_URL of the server the callbacks are for")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	const token = "callbackload-twilio-token-0123456789"
	switch {
	case o.serveBare != "":
		return serveBare(o.serveBare)
	case o.serveProto != "":
		return serveProto(o.serveProto, os.Getenv("CALLBACKLOAD_PROTO_REDIS"), token, os.Getenv("CALLBACKLOAD_PROTO_PUBLIC_URL"))
	case o.replayOut != "":
		if o.redisURL != "" {
			if err := configureCarrier(ctx, o.redisURL, token); err != nil {
				return err
			}
		}
		return writeReplay(o.replayOut, strings.TrimRight(o.publicURL, "/"), newWorkload(o, token))
	case o.driver != "go" && o.driver != "wrk":
		return fmt.Errorf("-driver %q: want go or wrk", o.driver)
	}

	var redisPID int
	if o.redisURL == "" {
		p, err := redistest.StartProcess(o.durable)
		if err != nil {
			return err
		}
		defer p.Close()
		o.redisURL, redisPID = p.URL(), p.PID()
		_, _ = fmt.Fprintf(stdout, "redis: started redis-server on %s (appendfsync always: %v)\n", strings.TrimPrefix(o.redisURL, "redis://"), o.durable) // progress on the terminal; a closed stdout must not stop the run
	}
	if err := configureCarrier(ctx, o.redisURL, token); err != nil {
		return err
	}
	var serverPID int
	if o.target == "" {
		bin, err := buildSwitchboard(ctx)
		if err != nil {
			return err
		}
		stop, base, pid, err := startServer(ctx, o, bin, "REDIS_URL="+o.redisURL, "SWITCHBOARD_ADMIN_TOKEN=callbackload-admin-token-0123", "SWITCHBOARD_LOG_LEVEL=error")
		if err != nil {
			return err
		}
		defer stop()
		o.target, serverPID = base, pid
	}
	_, _ = fmt.Fprintf(stdout, "switchboard: %s; load: %d connections, %.0f%% duplicates, %.0f%% of calls reordered, %s per phase\n", // figures printed as they are measured; a closed stdout must not stop the run
		o.target, o.conns, 100*o.dupRate, 100*o.reorderRate, o.duration) // as above

	url := o.target + "/webhooks/load/status"
	if o.driver == "wrk" {
		self, _ := os.Executable()
		stop, base, pid, err := startServer(ctx, o, self, "-serve-bare")
		if err != nil {
			return err
		}
		defer stop()
		var proto target
		if o.prototype {
			redisAddr := strings.TrimSuffix(strings.TrimPrefix(o.redisURL, "redis://"), "/")
			stop, base, pid, err := startServer(ctx, o, self, "-serve-proto", "CALLBACKLOAD_PROTO_REDIS="+redisAddr,
				"CALLBACKLOAD_PROTO_PUBLIC_URL="+o.target)
			if err != nil {
				return err
			}
			defer stop()
			proto = target{base: base, pid: pid, redisPID: redisPID}
		}
		bareRate, err := wrkRounds(ctx, o, token, target{base: o.target, pid: serverPID, redisPID: redisPID}, target{base: base, pid: pid}, proto, stdout)
		if err != nil {
			return err
		}
		if o.rateOfBare > 0 {
			o.rate = int(o.rateOfBare * bareRate)
		}
		if o.rate == 0 {
			return nil
		}
		cpu := startCPU(serverPID, redisPID)
		open := drive(ctx, url, newWorkload(o, token), o.conns, o.rate, o.duration)
		_, _ = fmt.Fprintln(stdout, open.line(fmt.Sprintf("switchboard, open loop at %d/s", o.rate))) // figures printed as they are measured; a closed stdout must not stop the run
		_, _ = fmt.Fprintln(stdout, cpu.line(len(open.lat)))                                          // as above
		return nil
	}
	work := newWorkload(o, token)
	cpu := startCPU(serverPID, redisPID)
	sb := drive(ctx, url, work, o.conns, 0, o.duration)
	_, _ = fmt.Fprintln(stdout, sb.line("switchboard, closed loop")) // figures printed as they are measured; a closed stdout must not stop the run
	_, _ = fmt.Fprintln(stdout, cpu.line(len(sb.lat)))               // as above
	if !o.skipBare {
		self, _ := os.Executable()
		stop, base, pid, err := startServer(ctx, o, self, "-serve-bare")
		if err != nil {
			return err
		}
		cpu := startCPU(pid, 0)
		bare := drive(ctx, base+"/webhooks/load/status", newWorkload(o, token), o.conns, 0, o.duration)
		_, _ = fmt.Fprintln(stdout, bare.line("bare echo 204, closed loop")) // figures printed as they are measured; a closed stdout must not stop the run
		_, _ = fmt.Fprintln(stdout, cpu.line(len(bare.lat)))                 // as above
		stop()
		_, _ = fmt.Fprintf(stdout, "ratio switchboard/bare: %.2f\n", sb.perSecond()/bare.perSecond()) // figures printed as they are measured; a closed stdout must not stop the run
	}
	if o.rate > 0 {
		cpu := startCPU(serverPID, redisPID)
		open := drive(ctx, url, newWorkload(o, token), o.conns, o.rate, o.duration)
		_, _ = fmt.Fprintln(stdout, open.line(fmt.Sprintf("switchboard, open loop at %d/s", o.rate))) // figures printed as they are measured; a closed stdout must not stop the run
		_, _ = fmt.Fprintln(stdout, cpu.line(len(open.lat)))                                          // as above
	}
	if sb.errors() > 0 {
		return fmt.Errorf("%d callbacks were not acknowledged with 204", sb.errors())
	}
	return nil
}

// configureCarrier stores the twilio-kind carrier "load" the callbacks are signed for, the
// way the admin API does.
func configureCarrier(ctx context.Context, redisURL, token string) error {
	st, err := store.Open(ctx, store.Options{URL: redisURL}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // the carrier is stored or the error is returned; closing changes neither
	reg := carrier.NewRegistry(carrierdb.New(st), carrier.NewHTTPClient(), slog.New(slog.DiscardHandler))
	_, err = reg.Put(ctx, carrier.Config{ID: "load", Kind: carrier.Twilio, APIURL: "http://127.0.0.1:9",
		AccountSID: "AC" + strings.Repeat("0", 32), AuthToken: token, From: "+15550100", Enabled: true}, "callbackload")
	return err
}

func buildSwitchboard(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "callbackload-")
	if err != nil {
		return "", err
	}
	return rig.BuildSwitchboard(ctx, dir, os.Stderr)
}

// startServer runs bin on a free loopback port and waits until it answers. Arguments that
// start with "-" are flags; the others are environment variables.
func startServer(ctx context.Context, o options, bin string, argsOrEnv ...string) (stop func(), base string, pid int, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", 0, err
	}
	addr := l.Addr().String()
	_ = l.Close() // it only held the port while it was read
	var args, env []string
	for _, a := range argsOrEnv {
		if strings.HasPrefix(a, "-") {
			args = append(args, a, addr)
		} else {
			env = append(env, a)
		}
	}
	env = append(env, "SWITCHBOARD_ADDR="+addr, "SWITCHBOARD_PUBLIC_URL=http://"+addr)
	if o.debugAddr != "" {
		env = append(env, "SWITCHBOARD_DEBUG_ADDR="+o.debugAddr)
	}
	if o.procs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", o.procs))
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", 0, err
	}
	go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(out)) }() // the child's output is only drained, so it never blocks on a full pipe
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt) // it may have exited already; Wait below tells
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }() // stopped on purpose: its exit status says nothing
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill() // it did not stop in time; it may have exited meanwhile
			<-done
		}
	}
	base = "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			_ = resp.Body.Close() // only the status was wanted
			return stop, base, cmd.Process.Pid, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", 0, errors.New(bin + " did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveBare is the baseline: Echo with the same server settings, reading the body and
// answering 204, with no verification and no storage.
func serveBare(addr string) error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Server.ReadHeaderTimeout, e.Server.ReadTimeout, e.Server.WriteTimeout, e.Server.IdleTimeout =
		5*time.Second, 15*time.Second, 15*time.Second, 180*time.Second
	h := func(c echo.Context) error {
		_, _ = io.Copy(io.Discard, c.Request().Body) // the bare server reads the body as Switchboard would, to compare; its content is not used
		return c.NoContent(http.StatusNoContent)
	}
	e.POST("/webhooks/:carrier/status", h)
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	return e.Start(addr)
}
