package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// WrapUps is how calls are wrapped up: the dispositions an agent chooses from
// (SWITCHBOARD_DISPOSITIONS) and how long after a call ends its agent may still save its
// wrap-up (the wrap-up time and call.WrapUpGrace).
type WrapUps struct {
	Dispositions call.Dispositions
	Window       time.Duration
}

// maxWrapUpBody bounds a wrap-up request: 2,000 characters of notes, each up to 6 bytes as a
// JSON escape, and the rest.
const maxWrapUpBody = 16 << 10

// HandleWrapUp saves the notes and disposition of a call: the agent's own call (while it is
// live and until the wrap-up window after it ended) or, for the admin, any call. 200 with the
// call; 400 for a disposition not in the list or notes too long; 404 for an unknown call or
// another agent's; 409 once the agent's window has closed (or the call's wrap-up was changed
// too often); 413 for a body over 16 KiB; 503 when Redis does not answer.
func HandleWrapUp(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in struct {
			Notes       string `json:"notes"`
			Disposition string `json:"disposition"`
		}
		if err := decodeJSON(c, maxWrapUpBody, &in); err != nil {
			return fail(c, d.Log, err)
		}
		w := call.WrapUp{Notes: in.Notes, Disposition: in.Disposition, WrappedUpAt: time.Now().UTC().Truncate(time.Millisecond), WrappedUpBy: "admin"}
		if err := d.WrapUps.Dispositions.Check(w); err != nil {
			field := "disposition"
			if (call.WrapUp{Notes: in.Notes, Disposition: "-"}).Valid() != nil {
				field = "notes"
			}
			return fail(c, d.Log, &Error{Code: codeInvalid, Message: err.Error(), Fields: []FieldError{{Field: field, Message: err.Error()}}})
		}
		ctx := c.Request().Context()
		got, err := d.Store.Call(ctx, c.Param("id"))
		if err != nil {
			return fail(c, d.Log, err)
		}
		if a := agentOf(c); a != "" {
			if !got.HandledBy(a) {
				return fail(c, d.Log, errorf(codeNotFound, "not found")) // another agent's call, as GET answers
			}
			if !got.WrapUpOpen(time.Now(), d.WrapUps.Window) {
				return fail(c, d.Log, errorf(codeConflict, "this call's wrap-up closed "+d.WrapUps.Window.String()+" after it ended; ask an admin"))
			}
			w.WrappedUpBy = "agent:" + a
		}
		saved, err := d.Store.SaveWrapUp(ctx, got.ID, w)
		if errors.Is(err, store.ErrWrapUpLimit) {
			return fail(c, d.Log, errorf(codeConflict, "this call's wrap-up was changed too many times after it ended"))
		}
		if err != nil {
			return fail(c, d.Log, err)
		}
		return c.JSON(http.StatusOK, saved)
	}
}

// decodeJSON reads one JSON object of at most limit bytes into v, refusing unknown fields:
// 413 when the body is larger, 400 when it is not such an object.
func decodeJSON(c echo.Context, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errorf(codeTooLarge, fmt.Sprintf("the body is larger than %d KiB", limit>>10))
	case err != nil:
		return errorf(codeInvalid, "the body is not what this route takes: "+decodeMessage(err))
	}
	return nil
}
