package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
)

// hangupQueue stores the job that ends a call at its carrier; *dispatch.Actions implements it.
type hangupQueue interface {
	Hangup(ctx context.Context, c call.Call, by string) error
}

// HandleHangup asks the carrier to end a call: 202 with the call once the hang-up is stored
// as a job (any instance carries it out, with retries; the call's record ends when the
// carrier says so), 404 for an unknown call, 403 for another agent's call (a supervisor may
// end any call), 409 for a call that has ended, 503 when the job cannot be stored.
func HandleHangup(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		if d.Hangups == nil {
			return fail(c, d.Log, errorf(codeUnavailable, "hang-ups are not available on this server"))
		}
		ctx := c.Request().Context()
		got, err := d.Store.Call(ctx, c.Param("id"))
		if err != nil {
			return fail(c, d.Log, err)
		}
		// A supervisor ends any call (from the wallboard); an agent only its own.
		who := CallerOf(c)
		if !who.Staff() && !got.HandledBy(who.Agent.ID) {
			return fail(c, d.Log, errorf(codeForbidden, "this call is not yours"))
		}
		by := "api:" + who.Name()
		if got.State.Terminal() {
			return fail(c, d.Log, errorf(codeConflict, "the call has ended already ("+got.State.String()+")"))
		}
		if err := d.Hangups.Hangup(ctx, got, by); err != nil {
			return fail(c, d.Log, err)
		}
		return c.JSON(http.StatusAccepted, got)
	}
}
