package api

import "github.com/labstack/echo/v4"

// Register mounts every API route on e.
func Register(e *echo.Echo, d Deps) {
	admin := requireAdmin(d.AdminToken)
	caller := requireCaller(d) // the admin, or an agent for its own calls

	e.GET("/api/calls", handleListCalls(d), caller)
	e.POST("/api/calls", handleCallsPost(d), caller)
	e.GET("/api/calls/:id", handleGetCall(d), caller)
	e.POST("/api/calls/:id/hangup", handleHangup(d), caller)

	e.GET("/api/admin/carriers", handleListCarriers(d), admin)
	e.GET("/api/admin/carriers/:id", handleGetCarrier(d), admin)
	e.PUT("/api/admin/carriers/:id", handlePutCarrier(d), admin)
	e.DELETE("/api/admin/carriers/:id", handleDeleteCarrier(d), admin)
	e.GET("/api/admin/carriers/:id/breaker", handleGetBreaker(d), admin)
	e.POST("/api/admin/carriers/:id/breaker", handleForceBreaker(d), admin)
	e.GET("/api/admin/breakers", handleListBreakers(d), admin)
	e.GET("/api/admin/route", handleRoute(d), admin)
	e.GET("/api/admin/audit", handleAudit(d), admin)
	e.GET("/api/admin/events", handleCarrierEvents(d), admin)
	e.GET("/api/admin/agents", handleListAgents(d), admin)
	e.PUT("/api/admin/agents/:id", handlePutAgent(d), admin)
	e.DELETE("/api/admin/agents/:id", handleDeleteAgent(d), admin)

	// The console is a static page: it holds no data and asks for the token itself.
	e.GET("/admin", handleAdminPage())
}
