package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/carrier/reconcile"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/statsdb"
	"github.com/switchboard/switchboard/webhooks"
)

// carrierSide is the wiring of everything that talks to carriers: per-carrier breakers shared
// through Redis, routing, placement with failover and callback liveness, the carrier actions
// owed after an acknowledgement (jobs in Redis any instance runs), the reconciler, and the
// webhooks carriers call.
type carrierSide struct {
	breakers   *dispatch.Breakers
	router     *dispatch.Router
	placer     *dispatch.Placer
	actions    *dispatch.Actions
	reconciler *reconcile.Reconciler
	hooks      *webhooks.Server // set by newWebhooks, once the agents' side exists
	// otherInstances lists the public URLs of the other live instances; set by run once the
	// agents' side (which keeps this instance's heartbeat) exists.
	otherInstances func(ctx context.Context) ([]string, error)
}

// newCarrierSide builds the outbound side. The placer and the actions reach the webhooks
// (Telnyx stream URLs, answers prepared for inbound calls) only once newWebhooks has run,
// which run does before it starts anything.
func newCarrierSide(cfg config, st *carrierdb.Store, carriers *carrier.Registry, public string,
	metrics *prometheus.Registry, log *slog.Logger) *carrierSide {
	c := &carrierSide{}
	outbound := dispatch.NewMetrics(metrics)
	c.breakers = dispatch.NewBreakers(st, carriers, dispatch.BreakerOptions{Log: log, Metrics: outbound})
	c.router = dispatch.NewRouter(carriers, c.breakers, nil)
	c.placer = dispatch.NewPlacer(dispatch.PlacerDeps{Store: st, Registry: carriers, Breakers: c.breakers, Router: c.router,
		PublicURL: public, Metrics: outbound, Log: log, FallbackBase: c.fallbackBase,
		TelnyxStreamURL: func(base, carrier, callID string) string { return c.hooks.TelnyxStreamURLAt(base, carrier, callID) }})
	// Inbound calls are offered to the agents first.
	c.actions = dispatch.NewActions(dispatch.ActionDeps{Store: st, Registry: carriers, Metrics: outbound, Log: log,
		Instance: c.breakers.Instance(),
		Inbound: dispatch.PrepareFunc(func(ctx context.Context, j store.Job) (string, bool, error) {
			return c.hooks.PrepareAnswer(ctx, j)
		})})
	// Every call's record right in the end: quiet calls are checked with their carrier.
	c.reconciler = reconcile.New(reconcile.Deps{Store: st, Registry: carriers, Breakers: c.breakers,
		After: cfg.reconcileAfter, Metrics: reconcile.NewMetrics(metrics), Log: log})
	return c
}

// newWebhooks builds the carrier-facing handlers; agents is where inbound calls and their
// media go. The caller closes c.hooks.
func (c *carrierSide) newWebhooks(st *store.Redis, carriers *carrier.Registry, public, adminToken string,
	agents *agentSide, metrics *prometheus.Registry, tally *statsdb.Recorder, log *slog.Logger) {
	d := webhooks.Deps{
		Store:     st,
		Carriers:  carrierCredentials{carriers},
		PublicURL: public,
		// Keys the tokens of Telnyx media stream URLs; every instance derives the same one.
		MediaSecret: derivedSecret(adminToken, "switchboard media stream tokens v1"),
		Metrics:     webhooks.NewMetrics(metrics).Tally(tally), // and the console's charts
		Log:         log,
		Heard:       c.breakers, // carrier-level liveness
		Orphans:     c.actions,  // stores the hang-up of what an abandoned attempt created, on its first callback
	}
	agents.webhooks(&d)
	d.Media = reconcileOnStop{d.Media, c.reconciler, log}
	c.hooks = webhooks.New(d)
	agents.calls.streams = c.hooks // re-points build their stream URLs as the answers do
}

// run starts the side's loops as tasks; they stop when ctx ends. A loop that ends with an
// error (the placer's subscription could not be made) is logged: the others go on.
func (c *carrierSide) run(ctx context.Context, tasks *sync.WaitGroup, log *slog.Logger) {
	loop := func(name string, run func(context.Context) error) {
		tasks.Go(func() {
			if err := run(ctx); err != nil {
				log.Error(name+" stopped", "err", err)
			}
		})
	}
	loop("breakers", c.breakers.Run)
	loop("placer", c.placer.Run)
	loop("reconciler", c.reconciler.Run)
	loop("carrier actions", c.actions.Run)
}

// fallbackBase picks another live instance at random: a Twilio call placed here fetches its
// TwiML there if this instance is gone when the call is answered. None when this instance is
// alone, or Redis cannot say (the placement then fails on Redis anyway, or goes without).
func (c *carrierSide) fallbackBase(ctx context.Context) string {
	if c.otherInstances == nil {
		return ""
	}
	urls, err := c.otherInstances(ctx)
	if err != nil || len(urls) == 0 {
		return ""
	}
	return urls[rand.IntN(len(urls))]
}
