package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// serve serves e on ln until ctx ends, a signal arrives or serving fails, then drains: /readyz
// fails (draining is set) so load balancers stop sending, no new connections are taken, and
// requests in flight finish until the drain timeout. A second signal stops at once.
//
// handover (the agents' hub's Handover) runs as the drain begins, while everything is still
// served: the other instances take this one's calls over and their carriers move the media
// streams away, which must not find the streams' WebSockets (or the relays) closed. The HTTP
// server stops only after it returns (it bounds itself) and after the stop delay.
func serve(ctx context.Context, e *echo.Echo, ln net.Listener, signals <-chan os.Signal, draining *atomic.Bool,
	cfg config, log *slog.Logger, handover func(context.Context)) error {
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
	handedOver := make(chan struct{})
	go func() {
		defer close(handedOver)
		if handover != nil {
			handover(drainCtx)
		}
	}()
	if cfg.stopDelay > 0 {
		select {
		case <-time.After(cfg.stopDelay):
		case <-secondSignal:
		}
	}
	select {
	case <-handedOver:
	case <-secondSignal:
	}
	if err := e.Shutdown(drainCtx); err != nil {
		log.Warn("drain did not finish; closing what is left", "err", err)
		_ = e.Close() // a hard stop: connections are cut whatever Close reports
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
