package main

import (
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/cmd/switchboard/wallboard"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/statsdb"
	"github.com/switchboard/switchboard/store/storetest"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// TestEveryRouteIsDocumented: the routes addRoutes mounts are exactly the routes docs/api.md
// lists, so neither can grow a route the other does not know.
func TestEveryRouteIsDocumented(t *testing.T) {
	served := servedRoutes(t)
	documented := documentedRoutes(t)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in docs/api.md", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("%s is in docs/api.md but not served", r)
		}
	}
	if len(served) < 30 {
		t.Errorf("only %d routes served: %v", len(served), served)
	}
}

// servedRoutes wires the server as run does and returns its routes as "METHOD /path", a
// trailing slash dropped (docs/api.md says once that both spellings are served).
func servedRoutes(t *testing.T) []string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg, err := parseConfig([]string{"switchboard"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.OpenTest(t, redistest.Namespace(t))
	const public = "http://127.0.0.1:9"
	carriers := carrier.NewRegistry(carrierdb.New(st), nil, log)
	metrics := newMetrics()
	side := newCarrierSide(cfg, carrierdb.New(st), carriers, public, metrics, log)
	agents, err := newAgentSide(cfg, agentdb.New(st), carriers, side.placer, side.actions, public, adminToken, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agents.engine.Close() })
	side.newWebhooks(st, carriers, public, adminToken, agents, metrics, statsdb.New(st).NewRecorder(log), log)
	t.Cleanup(side.hooks.Close)

	e := echo.New()
	board := wallboard.New(wallboard.Deps{Store: agentdb.New(st)}, wallboard.Options{})
	addRoutes(e, log, public, st, new(atomic.Bool), metrics, side.hooks, agents.hub, &recording.Server{}, board, api.Deps{Store: st, AdminToken: adminToken, Log: log})
	var routes []string
	for _, r := range e.Routes() {
		path := r.Path
		if path != "/" {
			path = strings.TrimSuffix(path, "/")
		}
		if route := r.Method + " " + path; !slices.Contains(routes, route) {
			routes = append(routes, route)
		}
	}
	return routes
}

var documentedRoute = regexp.MustCompile("`(GET|HEAD|POST|PUT|DELETE|PATCH) (/[^`?]*)[^`]*`")

// documentedRoutes returns the routes docs/api.md names as `METHOD /path`, in Echo's spelling
// (/calls/{id} is /calls/:id), without query strings.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{(\w+)\}`)
	var routes []string
	for _, m := range documentedRoute.FindAllStringSubmatch(string(raw), -1) {
		route := m[1] + " " + param.ReplaceAllString(m[2], ":$1")
		if !slices.Contains(routes, route) {
			routes = append(routes, route)
		}
	}
	return routes
}
