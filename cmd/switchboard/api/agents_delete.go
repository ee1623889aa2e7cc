package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
)

// HandleDeleteAgent deletes an agent: its record, token and presence go at once, and its
// live sessions end on every instance (a ringing call goes back to the queue, a call in
// progress is hung up; docs/agents.md). 204, or 404 for an agent that does not exist, which
// leaves no audit entry.
func HandleDeleteAgent(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		ctx := c.Request().Context()
		if err := d.Agents.DeleteAgent(ctx, id); err != nil {
			return fail(c, d.Log, err)
		}
		if err := d.Agents.Audited(ctx, store.Audit{Actor: actor(c), Action: "agent.delete", Target: id}); err != nil {
			// The agent is gone either way; the answer must not say otherwise.
			d.Log.Warn("agent deletion not audited", "agent", id, "err", err)
		}
		return c.NoContent(http.StatusNoContent)
	}
}
