package main

import (
	"log/slog"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/cmd/switchboard/wallboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webhooks"
	"github.com/switchboard/switchboard/webrtc/agents"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// addRoutes mounts every route the server serves, one line each with its middleware, so the
// whole surface is in this one place. The server-wide middleware (request id, recover,
// request log) is in newEcho; docs/api.md describes each route.
func addRoutes(e *echo.Echo, log *slog.Logger, public string, st *store.Redis, draining *atomic.Bool,
	metrics *prometheus.Registry, hooks *webhooks.Server, hub *agents.Hub, rec *recording.Server, board *wallboard.Board,
	apiDeps api.Deps) {
	// Operations.
	e.GET("/", handleLanding(public))
	e.GET("/healthz", handleHealth)
	e.HEAD("/healthz", handleHealth) // load balancers probe with HEAD
	e.GET("/readyz", handleReady(st, draining))
	e.HEAD("/readyz", handleReady(st, draining))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(metrics, promhttp.HandlerOpts{})))

	// Carrier-facing, verified by each carrier's signature. Each is mounted with and without a
	// trailing slash, so both spellings a carrier might be configured with get the same answer
	// directly: a carrier must never see a 3xx (a redirected POST loses its body and signature,
	// and redirects multiplied the connections in the incident Switchboard was built after).
	for _, slash := range []string{"", "/"} {
		e.POST("/webhooks/:carrier/voice"+slash, hooks.HandleTwilioVoice())
		e.POST("/webhooks/:carrier/status"+slash, hooks.HandleTwilioStatus())
		e.POST("/webhooks/:carrier/events"+slash, hooks.HandleTelnyxEvents())
		e.GET("/webhooks/:carrier/media/:call"+slash, hooks.HandleMedia()) // a call's own stream
		e.GET("/webhooks/:carrier/media"+slash, hooks.HandleMedia())       // legacy: the start frame names the call
	}

	// Agents: the softphone page (no data in it; it signs in over the WebSocket), its
	// signalling (agent token), and the media relay between instances (shared secret).
	e.GET("/agent", agents.HandlePage())
	e.GET("/agent/", agents.HandlePage())
	e.GET("/agent/:file", agents.HandleFile()) // its scripts and style sheet
	e.GET("/agent/ws", hub.HandleSignalling())
	e.GET("/internal/media/:call", hub.HandleRelay())
	e.GET("/agent/monitor", hub.HandleMonitor()) // staff token in the first message
	// Recordings this instance wrote, for the other instances (a token derived from the
	// admin token, as the relay's).
	e.GET("/internal/recordings/:file", func(c echo.Context) error {
		rec.HandleInternal(c.Response(), c.Request(), c.Param("file"))
		return nil
	})

	// API: JSON, the admin token, or an agent's own token for its own calls; staff routes take
	// the admin token or a supervisor's (docs/security.md has the table).
	admin, staff, caller := api.RequireAdmin(apiDeps), api.RequireStaff(apiDeps), api.RequireCaller(apiDeps)
	e.GET("/api/me", api.HandleMe(apiDeps), caller)
	e.GET("/api/calls", api.HandleListCalls(apiDeps), caller)
	e.POST("/api/calls", api.HandleCallsPost(apiDeps), caller)
	e.GET("/api/calls/:id", api.HandleGetCall(apiDeps), caller)
	e.POST("/api/calls/:id/hangup", api.HandleHangup(apiDeps), caller)
	e.POST("/api/calls/:id/transfer", api.HandleTransfer(apiDeps), caller)
	e.GET("/api/calls/:id/recording", api.HandleRecording(apiDeps), caller)
	e.PUT("/api/calls/:id/wrapup", api.HandleWrapUp(apiDeps), caller)
	e.GET("/api/admin/carriers", api.HandleListCarriers(apiDeps), admin)
	e.GET("/api/admin/carriers/:id", api.HandleGetCarrier(apiDeps), admin)
	e.PUT("/api/admin/carriers/:id", api.HandlePutCarrier(apiDeps), admin)
	e.DELETE("/api/admin/carriers/:id", api.HandleDeleteCarrier(apiDeps), admin)
	e.GET("/api/admin/carriers/:id/breaker", api.HandleGetBreaker(apiDeps), admin)
	e.POST("/api/admin/carriers/:id/breaker", api.HandleForceBreaker(apiDeps), admin)
	e.GET("/api/admin/breakers", api.HandleListBreakers(apiDeps), admin)
	e.GET("/api/admin/route", api.HandleRoute(apiDeps), admin)
	e.GET("/api/admin/audit", api.HandleAudit(apiDeps), admin)
	e.GET("/api/admin/events", api.HandleCarrierEvents(apiDeps), admin)
	e.GET("/api/admin/agents", api.HandleListAgents(apiDeps), admin)
	e.PUT("/api/admin/agents/:id", api.HandlePutAgent(apiDeps), admin)
	e.DELETE("/api/admin/agents/:id", api.HandleDeleteAgent(apiDeps), admin)
	e.POST("/api/wallboard/ticket", board.HandleTicket(), staff)
	e.GET("/api/wallboard/stream", board.HandleStream()) // EventSource sends no header: the ticket is in the URL
	e.GET("/api/admin/cdr", api.HandleCDRExport(apiDeps), staff)
	e.GET("/api/admin/stats", api.HandleStats(apiDeps), staff)

	// Pages. The console holds no data and asks for a token itself.
	e.GET("/admin", api.HandleAdminPage())
	e.GET("/admin/:file", api.HandleConsoleFile()) // its scripts and style sheet

	// Everything else: an unknown route (404), a method a route does not take (405), and any
	// error no handler answered, in the API's one error shape.
	e.HTTPErrorHandler = api.HTTPErrorHandler(log)
}
