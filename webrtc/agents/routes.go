package agents

import (
	"embed"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"
)

// The softphone: one page, its scripts and its style sheet, plain files served from the binary.
//
//go:embed softphone/index.html softphone/*.js softphone/style.css
var softphone embed.FS

// The agent side's handlers; cmd/switchboard/routes.go mounts them.

// HandlePage serves the softphone page.
func HandlePage() echo.HandlerFunc {
	return servePage("softphone/index.html", "text/html; charset=utf-8")
}

// HandleFile serves the page's scripts and style sheet (/agent/:file): the .js and .css files
// beside it, nothing else.
func HandleFile() echo.HandlerFunc {
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	files := map[string]echo.HandlerFunc{}
	entries, err := softphone.ReadDir("softphone")
	if err != nil {
		panic(err) // the embed directive names the directory: it is there
	}
	for _, e := range entries {
		if t, ok := types[path.Ext(e.Name())]; ok {
			files[e.Name()] = servePage("softphone/"+e.Name(), t)
		}
	}
	return func(c echo.Context) error {
		serve, ok := files[c.Param("file")]
		if !ok {
			return echo.ErrNotFound
		}
		return serve(c)
	}
}

// HandleSignalling is the softphone's signalling WebSocket (it signs in with the agent's token).
func (h *Hub) HandleSignalling() echo.HandlerFunc { return h.handleSignal() }

// HandleMonitor is a supervisor's monitor WebSocket (package monitor; docs/agents.md,
// Monitoring).
func (h *Hub) HandleMonitor() echo.HandlerFunc { return h.monitors.Handle() }

// HandleRelay is the media relay another instance opens for a call this one holds
// (authenticated by the secret every instance derives from the admin token).
func (h *Hub) HandleRelay() echo.HandlerFunc { return h.handleRelay() }

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
