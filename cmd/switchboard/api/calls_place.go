package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier/dispatch"
)

// placer places outbound calls; *dispatch.Placer implements it.
type placer interface {
	Place(ctx context.Context, req dispatch.PlaceCall) (call.Call, error)
}

// handlePlaceCall places an outbound call and answers once a carrier accepted it (201 with
// the call). When no carrier takes it the call still exists, failed, with every attempt in
// its history: the answer is 503 (every carrier failed or none is available; retrying later
// may work) or 422 (a carrier refused the number; retrying will not help), each with the
// error and the call.
func handlePlaceCall(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body struct {
			To    string `json:"to"`
			From  string `json:"from"`
			Agent string `json:"agent"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return fail(c, d.Log, errorf(codeInvalid, `want {"to":"+15551234567","agent":"...","from":"..."}: `+decodeMessage(err)))
		}
		placed, err := d.Placer.Place(c.Request().Context(), dispatch.PlaceCall{To: body.To, From: body.From, Agent: body.Agent})
		var apiErr *Error
		switch {
		case err == nil:
			return c.JSON(http.StatusCreated, placed)
		case errors.Is(err, dispatch.ErrNoCarrier):
			apiErr = errorf(codeUnavailable, err.Error())
		case errors.Is(err, dispatch.ErrRefused):
			apiErr = errorf(codeRejected, err.Error())
		default:
			return fail(c, d.Log, err)
		}
		if placed.ID == "" {
			return fail(c, d.Log, apiErr)
		}
		return c.JSON(statusOf[apiErr.Code], map[string]any{"error": apiErr, "call": placed})
	}
}
