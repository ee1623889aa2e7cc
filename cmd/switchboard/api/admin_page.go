package api

import (
	"embed"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"
)

// The console: one page and its scripts and style sheet, plain files served from the binary
// (no build step). It holds no data: the admin (or a supervisor) pastes a token, the page
// keeps it in sessionStorage (gone when the tab closes) and calls the API with it.
//
//go:embed static/admin.html static/*.js static/*.css
var consoleFiles embed.FS

// consoleCSP keeps the console to its own files and its own API: no inline script or style.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// HandleAdminPage serves the console page.
func HandleAdminPage() echo.HandlerFunc {
	return func(c echo.Context) error { return serveConsoleFile(c, "admin.html") }
}

// HandleConsoleFile serves one of the console's scripts or style sheets, /admin/{file}.
func HandleConsoleFile() echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("file")
		if path.Ext(name) != ".js" && path.Ext(name) != ".css" {
			return echo.ErrNotFound
		}
		return serveConsoleFile(c, name)
	}
}

var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

func serveConsoleFile(c echo.Context, name string) error {
	body, err := consoleFiles.ReadFile("static/" + name)
	if err != nil {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	// Small files that change with the binary: revalidate rather than risk a stale script.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	return c.Blob(http.StatusOK, consoleTypes[path.Ext(name)], body)
}
