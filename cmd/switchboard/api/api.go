// Package api is Switchboard's JSON API for people: admins (bearer SWITCHBOARD_ADMIN_TOKEN)
// and, as the agent side grows, agents with their own tokens. It exports its handlers and
// middleware; cmd/switchboard/routes.go mounts them. Carrier-facing routes are not here: they
// live in package webhooks.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
)

// callStore is what the API reads calls from; *store.Redis implements it.
type callStore interface {
	Call(ctx context.Context, id string) (call.Call, error)
	CallByCarrierID(ctx context.Context, carrierCallID, carrier string) (call.Call, error)
	ActiveCalls(ctx context.Context, limit int) ([]call.Call, error)
	CallAttempts(ctx context.Context, id string) ([]store.Attempt, error)
	SaveWrapUp(ctx context.Context, id string, w call.WrapUp) (call.Call, error)
}

// Deps are what the API needs.
type Deps struct {
	Store      callStore
	WrapUps    WrapUps
	AdminToken string
	Log        *slog.Logger

	// Outbound calls and carrier administration.
	Carriers carrierAdmin
	Breakers breakerAdmin
	Router   router
	Placer   placer
	AdminLog adminLog
	// Agents: their records and presence (admins), their tokens (agents' own requests), and
	// dialing for them.
	Agents agentStore
	Dialer agentDialer
	// Hangups ends calls at their carriers through stored jobs.
	Hangups hangupQueue
	// Transfers hands calls from agent to agent.
	Transfers callTransferer
	// History is the call-detail records, for search and export.
	History cdrScanner
	// Stats is the last hour's figures, for the charts.
	Stats statsReader
	// Recordings: the parts of a call's recording, and their files.
	RecordingParts recordingStore
	Recordings     recordingServer
}

// Error is the one shape of every API error: a stable code and a message for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Fields lists every problem with the input, for a request that failed validation.
	Fields []FieldError `json:"fields,omitempty"`
}

// FieldError is one invalid input field, named as in the request's JSON.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes, and the one table that maps them to HTTP statuses.
const (
	codeInvalid      = "invalid"
	codeUnauthorized = "unauthorized"
	codeNotFound     = "not_found"
	codeUnavailable  = "unavailable"
	codeInternal     = "internal"
	codeRejected     = "rejected"
	codeConflict     = "conflict"
	codeCarrier      = "carrier_failed"
	codeForbidden    = "forbidden"
)

var statusOf = map[string]int{
	codeInvalid:      http.StatusBadRequest,
	codeUnauthorized: http.StatusUnauthorized,
	codeNotFound:     http.StatusNotFound,
	codeUnavailable:  http.StatusServiceUnavailable,
	codeInternal:     http.StatusInternalServerError,
	codeRejected:     http.StatusUnprocessableEntity,
	codeConflict:     http.StatusConflict,
	codeCarrier:      http.StatusBadGateway,
	codeForbidden:    http.StatusForbidden,

	codeUnknownAgent:      http.StatusNotFound,
	codeTargetOffline:     http.StatusConflict,
	codeTargetBusy:        http.StatusConflict,
	codeTargetUnavailable: http.StatusConflict,
	codeNotImplemented:    http.StatusNotImplemented,
	codeTooLarge:          http.StatusRequestEntityTooLarge,
}

func errorf(code, message string) *Error { return &Error{Code: code, Message: message} }

// fail writes err as an API error. Store and other internal errors are logged with the
// request id and answered without their detail.
func fail(c echo.Context, log *slog.Logger, err error) error {
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr):
	case errors.Is(err, store.ErrNotFound), errors.Is(err, carrier.ErrNotFound):
		apiErr = errorf(codeNotFound, "not found")
	case errors.As(err, new(carrier.ValidationErrors)), errors.As(err, new(*carrier.ValidationError)):
		apiErr = invalidFields(err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || store.IsUnavailable(err):
		apiErr = errorf(codeUnavailable, "storage is unavailable; retry")
	default:
		log.Error("api request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"path", c.Path(), "err", err)
		apiErr = errorf(codeInternal, "internal error; see the server log for request "+c.Response().Header().Get(echo.HeaderXRequestID))
	}
	return c.JSON(statusOf[apiErr.Code], map[string]*Error{"error": apiErr})
}

func unauthorized(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
	return c.JSON(http.StatusUnauthorized, map[string]*Error{
		"error": errorf(codeUnauthorized, "a valid bearer token is required")})
}
