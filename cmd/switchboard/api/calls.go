package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// maxListed bounds one listing of active calls.
const maxListed = 1000

func HandleGetCall(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		got, err := d.Store.Call(c.Request().Context(), c.Param("id"))
		if err != nil {
			return fail(c, d.Log, err)
		}
		if !mayRead(c, got) {
			return fail(c, d.Log, errorf(codeNotFound, "not found")) // another agent's call
		}
		attempts, err := d.Store.CallAttempts(c.Request().Context(), got.ID)
		if err != nil {
			return fail(c, d.Log, err)
		}
		if attempts == nil {
			attempts = []store.Attempt{} // an inbound call: none, rather than null
		}
		answer := callPage{Call: got, Attempts: attempts}
		if d.RecordingParts != nil {
			parts, err := d.RecordingParts.RecordingParts(c.Request().Context(), got.ID)
			if err != nil {
				return fail(c, d.Log, err)
			}
			answer.Recording = recordingOf(parts)
		}
		return c.JSON(http.StatusOK, answer)
	}
}

// callPage is a call as GET /api/calls/{id} answers it: the record with its history, and
// the carriers tried for it in order (an outbound call's failovers), and its recording.
type callPage struct {
	call.Call
	Attempts  []store.Attempt `json:"attempts"`
	Recording *callRecording  `json:"recording"`
}

// HandleListCalls answers the two listings of the contract: by the carrier's call id, and the
// calls still active.
func HandleListCalls(d Deps) echo.HandlerFunc {
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

// HandleCallsPost places an outbound call. A call for an agent (placed with the agent's own
// token, or by the admin naming the agent) is dialled through the agent's softphone, which
// must be signed in: the agent hears it ring and then the far end. A call the admin places
// for nobody goes straight to the carriers (load tests, drills, automation).
func HandleCallsPost(d Deps) echo.HandlerFunc {
	forAgent, direct := handleDialForAgent(d), handlePlaceCall(d)
	return func(c echo.Context) error {
		if d.Dialer == nil { // a server without the agent side
			return direct(c)
		}
		if agentOf(c) != "" {
			return forAgent(c)
		}
		raw, err := io.ReadAll(io.LimitReader(c.Request().Body, 4<<10+1))
		if err != nil || len(raw) > 4<<10 {
			return fail(c, d.Log, errorf(codeInvalid, `want {"to":"+15551234567","agent":"ann"}`))
		}
		var peek struct {
			Agent string `json:"agent"`
		}
		_ = json.Unmarshal(raw, &peek) // a peek only: the handler it routes to decodes the body and reports errors
		c.Request().Body = io.NopCloser(bytes.NewReader(raw))
		if peek.Agent != "" {
			return forAgent(c)
		}
		return direct(c)
	}
}
