package api

import "github.com/labstack/echo/v4"

// Register mounts every API route on e.
func Register(e *echo.Echo, d Deps) {
	admin := requireAdmin(d.AdminToken)

	e.GET("/api/calls", handleListCalls(d), admin)
	e.GET("/api/calls/:id", handleGetCall(d), admin)
}
