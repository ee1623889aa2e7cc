package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store/statsdb"
)

// statsReader is the figures the charts are drawn from; *statsdb.Store implements it.
type statsReader interface {
	Window(ctx context.Context, d time.Duration) (statsdb.Window, error)
}

// stats is the answer of GET /api/admin/stats: the window's figures, and each breaker's state
// now, which is where its timeline ends (and all of it, for a breaker with no change in the
// window).
type stats struct {
	Span string `json:"window"`
	statsdb.Window
	BreakersNow []breakerNow `json:"breakers_now"`
}

type breakerNow struct {
	Carrier string                `json:"carrier"`
	State   dispatch.BreakerState `json:"state"`
	Force   dispatch.Force        `json:"force"`
}

// HandleStats answers the last window (default and longest 1h) of the fleet's figures.
func HandleStats(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		window := time.Hour
		if s := c.QueryParam("window"); s != "" {
			w, err := time.ParseDuration(s)
			if err != nil || w < statsdb.Step || w > statsdb.MaxWindow {
				return fail(c, d.Log, &Error{Code: codeInvalid, Message: "the window is not valid",
					Fields: []FieldError{{Field: "window", Message: "want a duration from 10s to 1h, such as 15m"}}})
			}
			window = w
		}
		ctx := c.Request().Context()
		w, err := d.Stats.Window(ctx, window)
		if err != nil {
			return fail(c, d.Log, err)
		}
		out := stats{Span: window.String(), Window: w, BreakersNow: []breakerNow{}}
		if d.Carriers != nil && d.Breakers != nil { // nil on a server without the carrier side
			for _, cfg := range d.Carriers.All() {
				st, err := d.Breakers.Status(ctx, cfg.ID)
				if err != nil {
					continue // deleted meanwhile
				}
				out.BreakersNow = append(out.BreakersNow, breakerNow{Carrier: cfg.ID, State: st.State, Force: st.Force})
			}
		}
		return c.JSON(http.StatusOK, out)
	}
}
