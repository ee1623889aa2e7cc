package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// recordingStore reads a call's recording parts; *store.Redis implements it.
type recordingStore interface {
	RecordingParts(ctx context.Context, callID string) ([]store.RecordingPart, error)
}

// recordingServer serves a part's file, from here or from the instance that wrote it;
// *recording.Server implements it.
type recordingServer interface {
	ServePart(w http.ResponseWriter, r *http.Request, part store.RecordingPart) error
}

// callRecording is what the call's answer says about its recording.
type callRecording struct {
	DurationMS int64                 `json:"duration_ms"`
	Parts      []store.RecordingPart `json:"parts"`
}

// recordingOf summarises a call's recording; nil when it was not recorded.
func recordingOf(parts []store.RecordingPart) *callRecording {
	if len(parts) == 0 {
		return nil
	}
	r := &callRecording{Parts: parts}
	for _, p := range parts {
		r.DurationMS += p.DurationMS
	}
	return r
}

// HandleRecording serves a call's recording (GET /api/calls/{id}/recording[?part=N]) as a
// two-channel WAV, with Range: to the admin, or to the agent on its own call. A call handed
// over between instances while it was recorded has one part per instance (the call's answer
// lists them); part 0, the first, is the default.
func HandleRecording(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		id := c.Param("id")
		got, err := d.Store.Call(ctx, id)
		if err != nil {
			return fail(c, d.Log, err)
		}
		if !mayRead(c, got) {
			return fail(c, d.Log, errorf(codeNotFound, "not found")) // another agent's call
		}
		if d.Recordings == nil || d.RecordingParts == nil {
			return fail(c, d.Log, errorf(codeNotFound, "the call was not recorded"))
		}
		parts, err := d.RecordingParts.RecordingParts(ctx, id)
		if err != nil {
			return fail(c, d.Log, err)
		}
		n := 0
		if s := c.QueryParam("part"); s != "" {
			if n, err = strconv.Atoi(s); err != nil || n < 0 {
				return fail(c, d.Log, &Error{Code: codeInvalid, Message: "part must be a part number from the call's recording",
					Fields: []FieldError{{Field: "part", Message: "not a part number"}}})
			}
		}
		switch {
		case len(parts) == 0:
			return fail(c, d.Log, errorf(codeNotFound, "the call was not recorded"))
		case n >= len(parts):
			return fail(c, d.Log, errorf(codeNotFound, "the recording has "+strconv.Itoa(len(parts))+" part(s)"))
		}
		switch err := d.Recordings.ServePart(c.Response(), c.Request(), parts[n]); {
		case errors.Is(err, recording.ErrGone):
			return fail(c, d.Log, errorf(codeNotFound, "the recording's file is gone (past its retention)"))
		case errors.Is(err, recording.ErrUnreachable):
			return fail(c, d.Log, errorf(codeUnavailable, "the instance holding the recording cannot be reached; retry"))
		case err != nil:
			return fail(c, d.Log, err)
		}
		return nil
	}
}
