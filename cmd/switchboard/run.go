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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webhooks"
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
	st, err := store.Open(ctx, store.Options{URL: cfg.redisURL, Namespace: cfg.namespace, Retention: cfg.retention,
		MinReplicas: cfg.deploy.minReplicas}, log)
	if err != nil {
		return err
	}
	defer st.Close()

	adminToken := cfg.adminToken
	if adminToken == "" {
		adminToken = newToken()
		fmt.Fprintf(stdout, "SWITCHBOARD_ADMIN_TOKEN is not set; this run's admin token is %s\n", adminToken)
	}

	var draining atomic.Bool
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	carriers := carrier.NewRegistry(st, carrier.NewHTTPClient(), log)
	if err := carriers.Load(ctx); err != nil {
		return fmt.Errorf("load carriers: %w", err)
	}
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
	defer ln.Close() // on a start-up error; after a shutdown it is closed already
	public := cfg.publicBase(ln.Addr())
	warnPlainHTTP(public, log)

	// Outbound calls: per-carrier breakers shared through Redis, routing, placement with
	// failover and callback liveness. Both loops stop with the other background tasks.
	var hooks *webhooks.Server // the placer builds Telnyx stream URLs with it, once it exists
	outbound := carrier.NewMetrics(metrics)
	breakers := carrier.NewBreakers(st, carriers, carrier.BreakerOptions{Log: log, Metrics: outbound})
	router := carrier.NewRouter(carriers, breakers, nil)
	placer := carrier.NewPlacer(carrier.PlacerDeps{Store: st, Registry: carriers, Breakers: breakers, Router: router,
		PublicURL: public, Metrics: outbound, Log: log,
		TelnyxStreamURL: func(base, carrier, callID string) string { return hooks.TelnyxStreamURLAt(base, carrier, callID) }})
	tasks.Go(func() { breakers.Run(background) })
	tasks.Go(func() { placer.Run(background) })
	// Carrier actions owed after an acknowledgement (answers, hang-ups, rejects) are jobs in
	// Redis that any instance runs; inbound calls are offered to the agents first.
	actions := carrier.NewActions(carrier.ActionDeps{Store: st, Registry: carriers, Metrics: outbound, Log: log,
		Instance: breakers.Instance(),
		Inbound: carrier.PrepareFunc(func(ctx context.Context, j store.Job) (string, bool, error) {
			return hooks.PrepareAnswer(ctx, j)
		})})

	// The agents' side: softphones, presence, routing of inbound calls, the media bridge.
	agents, err := newAgentSide(cfg, st, carriers, placer, actions, public, adminToken, log)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	tasks.Go(func() { agents.run(background, log) })

	hookDeps := webhooks.Deps{
		Store:     st,
		Carriers:  carrierCredentials{carriers},
		PublicURL: public,
		// Keys the tokens of Telnyx media stream URLs; every instance derives the same one.
		MediaSecret: derivedSecret(adminToken, "switchboard media stream tokens v1"),
		Metrics:     webhooks.NewMetrics(metrics),
		Log:         log,
		Heard:       breakers, // carrier-level liveness
		Orphans:     actions,  // stores the hang-up of what an abandoned attempt created, on its first callback
	}
	agents.webhooks(&hookDeps)

	// Every call's record right in the end: quiet calls are checked with their carrier.
	reconciler := carrier.NewReconciler(carrier.ReconcilerDeps{Store: st, Registry: carriers, Breakers: breakers,
		After: cfg.reconcileAfter, Metrics: carrier.NewReconcileMetrics(metrics), Log: log})
	tasks.Go(func() { reconciler.Run(background) })
	hookDeps.Media = reconcileOnStop{hookDeps.Media, reconciler, log}
	hooks = webhooks.New(hookDeps)
	defer hooks.Close()
	tasks.Go(func() { actions.Run(background) })

	// The one-command demo: with an embedded Redis and nothing configured, two simulated
	// carriers stand in for real ones.
	var demo *demoCarriers
	if st.Embedded() && len(carriers.All()) == 0 {
		if demo, err = startDemoCarriers(ctx, carriers, public, log); err != nil {
			return err
		}
		defer demo.close()
	}

	e := newEcho(log)
	e.HTTPErrorHandler = api.HTTPErrorHandler(log)
	e.GET("/", handleLanding(public))
	e.GET("/healthz", handleHealth)
	e.HEAD("/healthz", handleHealth) // load balancers probe with HEAD
	e.GET("/readyz", handleReady(st, &draining))
	e.HEAD("/readyz", handleReady(st, &draining))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(metrics, promhttp.HandlerOpts{})))
	hooks.Register(e)
	agents.hub.Register(e)
	api.Register(e, api.Deps{Store: st, AdminToken: adminToken, Log: log,
		Carriers: carriers, Breakers: breakers, Router: router, Placer: placer, AdminLog: st,
		Agents: st, Dialer: agents.hub, Hangups: actions})
	fmt.Fprintf(stdout, "Switchboard listening on %s (public URL %s)\n", ln.Addr(), public)
	// The banner's requests work as printed: a generated token is printed anyway; a configured
	// one stays out of the output (and the logs that keep it), as the shell variable it is.
	tokenRef := "$SWITCHBOARD_ADMIN_TOKEN"
	if cfg.adminToken == "" {
		tokenRef = adminToken
	}
	fmt.Fprintf(stdout, "  health:  %s/healthz\n  calls:   curl -H \"Authorization: Bearer %s\" '%s/api/calls?state=active'\n", public, tokenRef, public)
	fmt.Fprintf(stdout, "  admin:   %s/admin\n", public)
	fmt.Fprintf(stdout, "  softphone: %s/agent\n", public)
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

	e.Listener = ln
	served := make(chan error, 1)
	go func() { served <- e.Start("") }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Info("stopping: context ended; draining", "timeout", cfg.drainTimeout)
	case sig := <-signals:
		log.Info("stopping: draining; send the signal again to stop at once", "signal", sig,
			"delay", cfg.stopDelay, "timeout", cfg.drainTimeout)
	}
	draining.Store(true)

	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.stopDelay+cfg.drainTimeout)
	defer cancel()
	secondSignal := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			log.Warn("stopping now: second signal", "signal", sig)
			close(secondSignal)
			cancel()
		case <-drainCtx.Done():
		}
	}()
	// A load balancer still sends to us until its health checks see /readyz fail; closing
	// idle keep-alive connections before then would fail its next request on them. So keep
	// serving everything for the delay, with /readyz saying draining.
	if cfg.stopDelay > 0 {
		select {
		case <-time.After(cfg.stopDelay):
		case <-secondSignal:
		}
	}
	if err := e.Shutdown(drainCtx); err != nil {
		log.Warn("drain did not finish; closing what is left", "err", err)
		e.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
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
