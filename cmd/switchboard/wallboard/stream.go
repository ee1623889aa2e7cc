package wallboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
)

// A browser's EventSource cannot send an Authorization header, and a long-lived token in a
// URL ends up in access logs, proxies and the browser's history. So the page first trades its
// token for a ticket (POST /api/wallboard/ticket, an ordinary authenticated request), and the
// stream's URL carries the ticket: random, single use, and good for TicketTTL only. A ticket
// that leaks afterwards is spent or expired. The ticket remembers who asked (the admin, or a
// supervisor and the token it used), and the board keeps checking that a supervisor's token
// is still in force while its stream lasts.

// HandleTicket issues a stream ticket to the caller (mount it behind api.RequireStaff):
// {"ticket":..., "url":..., "expires_in_s":30}.
func (b *Board) HandleTicket() echo.HandlerFunc {
	return func(c echo.Context) error {
		who := api.CallerOf(c)
		if !who.Staff() {
			return echo.NewHTTPError(http.StatusForbidden, "the wallboard is for the admin and supervisors")
		}
		holder := "admin"
		if !who.Admin {
			holder = "agent:" + who.Agent.ID + ":" + who.Agent.TokenID
		}
		ticket := store.NewTicket()
		if err := b.st.IssueTicket(c.Request().Context(), ticket, holder, b.opts.TicketTTL); err != nil {
			b.log.Warn("wallboard: ticket not stored", "err", err)
			return echo.NewHTTPError(http.StatusServiceUnavailable, "storage unavailable; retry")
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, map[string]any{
			"ticket":       ticket,
			"url":          "/api/wallboard/stream?ticket=" + url.QueryEscape(ticket),
			"expires_in_s": int(b.opts.TicketTTL / time.Second),
		})
	}
}

// HandleStream serves the wallboard as server-sent events to the holder of a ticket: 401 for
// a ticket unknown, spent or expired, 403 when its supervisor lost the right meanwhile, 503
// when Redis cannot say or the instance serves too many streams already.
func (b *Board) HandleStream() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		holder, err := b.st.RedeemTicket(ctx, c.QueryParam("ticket"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			return echo.NewHTTPError(http.StatusUnauthorized, "the ticket is unknown, used or expired; ask for another (POST /api/wallboard/ticket)")
		case err != nil:
			return echo.NewHTTPError(http.StatusServiceUnavailable, "storage unavailable; retry")
		}
		var agent, tokenID string
		if holder != "admin" {
			rest, _ := strings.CutPrefix(holder, "agent:")
			agent, tokenID, _ = strings.Cut(rest, ":")
			a, err := b.st.Agent(ctx, agent)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return echo.NewHTTPError(http.StatusForbidden, "the agent no longer exists")
			case err != nil:
				return echo.NewHTTPError(http.StatusServiceUnavailable, "storage unavailable; retry")
			case a.TokenID != tokenID || a.Role != agentdb.RoleSupervisor:
				return echo.NewHTTPError(http.StatusForbidden, "the token that asked for the ticket is no longer a supervisor's")
			}
		}
		w, err := b.join(agent, tokenID)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		defer b.leave(w)
		return b.serve(c, w)
	}
}

// serve writes w's events until the tab goes, the board cuts it off or the server stops.
// Every write has a deadline of its own: the server's WriteTimeout, which bounds a whole
// request, would fail the first write after it, and without any deadline a stuck tab would
// hold its goroutine. (The server lifts its ReadTimeout itself once the request is read.)
func (b *Board) serve(c echo.Context, w *watcher) error {
	res := c.Response()
	rc := http.NewResponseController(res)
	h := res.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on as it comes
	res.WriteHeader(http.StatusOK)
	write := func(p []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(b.opts.WriteTimeout)); err != nil {
			return false
		}
		if _, err := res.Write(p); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The page reconnects itself with a fresh ticket; EventSource's own retry would reuse the
	// spent one.
	if !write([]byte("retry: 2000\n\n")) {
		return nil
	}
	keepAlive := time.NewTicker(b.opts.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-b.closing:
			write(byeEvent("the server is stopping"))
			return nil
		case <-w.gone:
			if w.why != "" {
				write(byeEvent(w.why))
			}
			return nil
		case ev := <-w.events:
			if !write(ev) {
				return nil
			}
		case <-keepAlive.C:
			if !write([]byte(": keep-alive\n\n")) {
				return nil
			}
		}
	}
}
