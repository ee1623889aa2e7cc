package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
)

// maxListed bounds one listing of active calls.
const maxListed = 1000

func handleGetCall(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		got, err := d.Store.Call(c.Request().Context(), c.Param("id"))
		if err != nil {
			return fail(c, d.Log, err)
		}
		if a := agentOf(c); a != "" && got.Agent != a {
			return fail(c, d.Log, errorf(codeNotFound, "not found")) // another agent's call
		}
		return c.JSON(http.StatusOK, got)
	}
}

// handleListCalls answers the two listings of the contract: by the carrier's call id, and the
// calls still active.
func handleListCalls(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		ccid, state := c.QueryParam("carrier_call_id"), c.QueryParam("state")
		switch {
		case ccid != "" && state == "":
			found, err := d.Store.CallByCarrierID(ctx, ccid, c.QueryParam("carrier"))
			if err != nil {
				return fail(c, d.Log, err)
			}
			return c.JSON(http.StatusOK, callList{Calls: ownCalls(c, []call.Call{found})})
		case state == "active" && ccid == "":
			calls, err := d.Store.ActiveCalls(ctx, maxListed)
			if err != nil {
				return fail(c, d.Log, err)
			}
			return c.JSON(http.StatusOK, callList{Calls: ownCalls(c, calls)})
		default:
			return fail(c, d.Log, errorf(codeInvalid, "give exactly one of carrier_call_id=... or state=active"))
		}
	}
}

type callList struct {
	Calls []call.Call `json:"calls"`
}
