package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed static/admin.html
var adminPage []byte

// HandleAdminPage serves the console. It is static: the admin pastes the token, the page
// keeps it in sessionStorage (gone when the tab closes) and calls the admin API with it.
func HandleAdminPage() echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", adminPage)
	}
}
