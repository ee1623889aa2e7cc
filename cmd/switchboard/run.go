package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/cmd/switchboard/wallboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/statsdb"
)

// run wires the server explicitly and in order, serves until ctx ends or a signal arrives,
// and returns every start-up and serve error. Tests call it with -addr 127.0.0.1:0.
//
// Shutdown has two stages: the first SIGTERM/SIGINT (or ctx ending) drains: /readyz fails so
// load balancers stop sending, no new connections are taken, and requests in flight finish
// until the drain timeout. A second signal stops at once.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed; asking for help is not a failure
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	if err := checkSharedToken(cfg); err != nil {
		return err
	}
	st, err := newStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // the last thing run does; nothing is left to lose
	carrierDB := carrierdb.New(st)    // the carrier side's records, on the same Redis
	agentDB := agentdb.New(st)        // the agents' records, on the same Redis
	adminToken := adminTokenOf(cfg, stdout)
	metrics := newMetrics()

	carriers := carrier.NewRegistry(carrierDB, carrier.NewHTTPClient(), log)
	if err := carriers.Load(ctx); err != nil {
		return fmt.Errorf("load carriers: %w", err)
	}
	// Background tasks outlive ctx until the drain is over; they stop, and are waited for,
	// last but the store.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var tasks sync.WaitGroup
	defer func() { stopBackground(); tasks.Wait() }()
	tasks.Go(func() {
		if err := carriers.Watch(background); err != nil {
			log.Error("carrier configuration is no longer watched", "err", err)
		}
	})

	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	defer func() { _ = ln.Close() }() // on a start-up error; after a shutdown it is closed already
	public := cfg.publicBase(ln.Addr())
	warnPlainHTTP(public, log)

	// The carrier side, then the agents' side (softphones, presence, routing of inbound calls,
	// the media bridge), then the webhooks that join them.
	carrierSide := newCarrierSide(cfg, carrierDB, carriers, public, metrics, log)
	recordings, err := openRecordings(cfg.recording, adminToken, log)
	if err != nil {
		return err
	}
	agents, err := newAgentSide(cfg, agentDB, carriers, carrierSide.placer, carrierSide.actions, public, adminToken, log)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	recordings.server.Instance = agents.instance
	carrierSide.otherInstances = func(ctx context.Context) ([]string, error) {
		return agentDB.OtherInstanceURLs(ctx, agents.instance)
	}
	tasks.Go(func() { recordings.run(background, log) })
	// The console's charts: callbacks counted in memory, flushed to Redis once a second.
	stats := statsdb.New(st)
	tally := stats.NewRecorder(log)
	tasks.Go(func() { _ = tally.Run(background) }) // its last flush's error: nothing is left to tell
	carrierSide.newWebhooks(st, carriers, public, adminToken, agents, metrics, tally, log)
	defer carrierSide.hooks.Close()
	carrierSide.run(background, &tasks, log)
	tasks.Go(func() { agents.run(background, log) })

	// The one-command demo: with an embedded Redis and nothing configured, two simulated
	// carriers stand in for real ones.
	var demo *demoCarriers
	if st.Embedded() && len(carriers.All()) == 0 {
		if demo, err = startDemoCarriers(ctx, carriers, public, log); err != nil {
			return err
		}
		defer demo.close()
	}

	// The console's wallboard: one builder of the floor for every tab watching this instance.
	// Its streams end when the HTTP server shuts down, which would otherwise wait for them.
	// Its callbacks per second are the charts' figures (statsdb), the fleet's over the last 10-20 s.
	board := wallboard.New(wallboard.Deps{Store: agentDB, Breakers: carrierSide.breakers, Carriers: carriers, Rates: stats, Log: log}, wallboard.Options{})
	tasks.Go(func() { board.Run(background) })

	var draining atomic.Bool
	e := newEcho(log)
	e.Server.RegisterOnShutdown(board.Close)
	addRoutes(e, log, public, st, &draining, metrics, carrierSide.hooks, agents.hub, recordings.server, board, api.Deps{
		Store: st, AdminToken: adminToken, Log: log, WrapUps: cfg.wrapUps(),
		Carriers: carriers, Breakers: carrierSide.breakers, Router: carrierSide.router, Placer: carrierSide.placer,
		AdminLog: carrierDB, Agents: agentDB, Dialer: agents.hub, Hangups: carrierSide.actions,
		RecordingParts: st, Recordings: recordings.server, Transfers: agents.hub, History: st, Stats: stats})

	if err := printBanner(ctx, stdout, cfg, ln.Addr(), public, adminToken, agentDB, carriers, demo); err != nil {
		return err
	}
	return serve(ctx, e, ln, signals, &draining, cfg, log, agents.hub.Handover)
}

// newStore opens Redis as configured: an embedded one when no URL is given.
func newStore(ctx context.Context, cfg config, log *slog.Logger) (*store.Redis, error) {
	return store.Open(ctx, store.Options{URL: cfg.redisURL, Namespace: cfg.namespace, Retention: cfg.retention,
		MinReplicas: cfg.deploy.minReplicas}, log)
}

// adminTokenOf is the configured admin token, or a new one for this run, printed so that the
// person who started the server can use it.
func adminTokenOf(cfg config, stdout io.Writer) string {
	if cfg.adminToken != "" {
		return cfg.adminToken
	}
	token := newToken()
	_, _ = fmt.Fprintf(stdout, "SWITCHBOARD_ADMIN_TOKEN is not set; this run's admin token is %s\n", token) // the banner is advice; a closed stdout must not stop the server
	return token
}

// newMetrics is the server's Prometheus registry, with the Go runtime's and the process's
// collectors.
func newMetrics() *prometheus.Registry {
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return metrics
}

// printBanner tells the person who started the server where it is and what to try next.
func printBanner(ctx context.Context, stdout io.Writer, cfg config, addr net.Addr, public, adminToken string,
	st *agentdb.Store, carriers *carrier.Registry, demo *demoCarriers) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Switchboard listening on %s (public URL %s)\n", addr, public)
	// The banner's requests work as printed: a generated token is printed anyway; a configured
	// one stays out of the output (and the logs that keep it), as the shell variable it is.
	tokenRef := "$SWITCHBOARD_ADMIN_TOKEN"
	if cfg.adminToken == "" {
		tokenRef = adminToken
	}
	fmt.Fprintf(&b, "  health:  %s/healthz\n  calls:   curl -H \"Authorization: Bearer %s\" '%s/api/calls?state=active'\n", public, tokenRef, public)
	fmt.Fprintf(&b, "  admin:   %s/admin\n", public)
	fmt.Fprintf(&b, "  softphone: %s/agent\n", public)
	_, _ = io.WriteString(stdout, b.String()) // the banner is advice; a closed stdout must not stop the server
	if st.Embedded() {
		if err := demoAgent(ctx, st, public, stdout); err != nil {
			return err
		}
	}
	if demo != nil {
		demo.describe(stdout)
	} else {
		printNextStep(ctx, stdout, public, tokenRef, len(carriers.All()), st)
	}
	return nil
}

// newEcho builds the HTTP server with explicit timeouts (Echo's are all zero) and a keep-alive
// idle timeout long enough that a carrier reuses one connection for many callbacks.
func newEcho(log *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Server.ReadHeaderTimeout = 5 * time.Second
	e.Server.ReadTimeout = 15 * time.Second
	e.Server.WriteTimeout = 15 * time.Second
	e.Server.IdleTimeout = 180 * time.Second
	e.Server.MaxHeaderBytes = 64 << 10
	e.Server.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	e.Use(middleware.RequestID())
	e.Use(middleware.Recover())
	e.Use(requestLog(log))
	return e
}

// requestLog writes one line per request at debug level, and one at warn/error per failure.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			level := slog.LevelDebug
			switch {
			case status >= 500:
				level = slog.LevelError
			case err != nil:
				level = slog.LevelWarn
			}
			if log.Enabled(c.Request().Context(), level) {
				attrs := []any{"method", c.Request().Method, "path", c.Request().URL.Path, "status", status,
					"duration", time.Since(start), "request_id", c.Response().Header().Get(echo.HeaderXRequestID)}
				if err != nil {
					attrs = append(attrs, "err", err)
				}
				log.Log(c.Request().Context(), level, "http request", attrs...)
			}
			return nil
		}
	}
}

func handleHealth(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }

func handleReady(st *store.Redis, draining *atomic.Bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if draining.Load() {
			return c.String(http.StatusServiceUnavailable, "draining\n")
		}
		if err := st.Ping(c.Request().Context()); err != nil {
			return c.String(http.StatusServiceUnavailable, "redis unreachable\n")
		}
		return c.String(http.StatusOK, "ready\n")
	}
}

func newToken() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
