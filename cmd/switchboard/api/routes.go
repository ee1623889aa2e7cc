package api

import "github.com/labstack/echo/v4"

// Register mounts every API route on e.
func Register(e *echo.Echo, d Deps) {
	admin := requireAdmin(d.AdminToken)
	caller := requireCaller(d) // the admin, or an agent for its own calls

	e.GET("/api/calls", handleListCalls(d), caller)
	e.POST("/api/calls", handleDialForAgent(d), caller)
	e.GET("/api/calls/:id", handleGetCall(d), caller)

	e.GET("/api/admin/agents", handleListAgents(d), admin)
	e.PUT("/api/admin/agents/:id", handlePutAgent(d), admin)
}
