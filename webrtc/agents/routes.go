package agents

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// The softphone: one page, its script and its style sheet, plain files served from the binary.
//
//go:embed softphone/index.html softphone/app.js softphone/style.css
var softphone embed.FS

// Register mounts every route of the agent side on e.
func (h *Hub) Register(e *echo.Echo) {
	e.GET("/agent", servePage("softphone/index.html", "text/html; charset=utf-8"))
	e.GET("/agent/", servePage("softphone/index.html", "text/html; charset=utf-8"))
	e.GET("/agent/app.js", servePage("softphone/app.js", "text/javascript; charset=utf-8"))
	e.GET("/agent/style.css", servePage("softphone/style.css", "text/css; charset=utf-8"))
	e.GET("/agent/ws", h.handleSignal())
	e.GET("/internal/media/:call", h.handleRelay())
}

// pageCSP keeps the softphone to its own files and its own WebSocket.
const pageCSP = "default-src 'self'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func servePage(name, contentType string) echo.HandlerFunc {
	body, err := softphone.ReadFile(name)
	if err != nil {
		panic(err) // the embed directive names the file: it is there
	}
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Small files that change with the binary: revalidate rather than risk a stale script.
		h.Set("Cache-Control", "no-cache")
		return c.Blob(http.StatusOK, contentType, body)
	}
}
