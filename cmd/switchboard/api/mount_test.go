package api

import "github.com/labstack/echo/v4"

// mount mounts the API's routes on e with the middleware cmd/switchboard/routes.go gives them.
func mount(e *echo.Echo, d Deps) {
	admin, staff, caller := RequireAdmin(d), RequireStaff(d), RequireCaller(d)
	e.GET("/api/me", HandleMe(d), caller)

	e.GET("/api/calls", HandleListCalls(d), caller)
	e.POST("/api/calls", HandleCallsPost(d), caller)
	e.GET("/api/calls/:id", HandleGetCall(d), caller)
	e.POST("/api/calls/:id/hangup", HandleHangup(d), caller)
	e.POST("/api/calls/:id/transfer", HandleTransfer(d), caller)
	e.PUT("/api/calls/:id/wrapup", HandleWrapUp(d), caller)

	e.GET("/api/admin/carriers", HandleListCarriers(d), admin)
	e.GET("/api/admin/carriers/:id", HandleGetCarrier(d), admin)
	e.PUT("/api/admin/carriers/:id", HandlePutCarrier(d), admin)
	e.DELETE("/api/admin/carriers/:id", HandleDeleteCarrier(d), admin)
	e.GET("/api/admin/carriers/:id/breaker", HandleGetBreaker(d), admin)
	e.POST("/api/admin/carriers/:id/breaker", HandleForceBreaker(d), admin)
	e.GET("/api/admin/breakers", HandleListBreakers(d), admin)
	e.GET("/api/admin/route", HandleRoute(d), admin)
	e.GET("/api/admin/audit", HandleAudit(d), admin)
	e.GET("/api/admin/events", HandleCarrierEvents(d), admin)
	e.GET("/api/admin/agents", HandleListAgents(d), admin)
	e.PUT("/api/admin/agents/:id", HandlePutAgent(d), admin)
	e.DELETE("/api/admin/agents/:id", HandleDeleteAgent(d), admin)
	e.GET("/api/admin/cdr", HandleCDRExport(d), staff)
	e.GET("/api/admin/stats", HandleStats(d), staff)

	e.GET("/admin", HandleAdminPage())
	e.GET("/admin/:file", HandleConsoleFile())
}
