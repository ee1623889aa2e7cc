package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Codes for errors that Echo itself raises (no route, wrong method, too large a body).
const (
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "too_large"
)

// codeOf is statusOf read backwards, for errors that arrive as HTTP statuses.
var codeOf = map[int]string{
	http.StatusBadRequest:            codeInvalid,
	http.StatusUnauthorized:          codeUnauthorized,
	http.StatusNotFound:              codeNotFound,
	http.StatusMethodNotAllowed:      codeMethodNotAllowed,
	http.StatusRequestEntityTooLarge: codeTooLarge,
	http.StatusServiceUnavailable:    codeUnavailable,
}

// HTTPErrorHandler answers the errors no handler wrote itself (an unknown route, a method a
// route does not take, a panic) in the API's one error shape, {"error":{"code","message"}},
// instead of Echo's own. Detail of an internal error is logged, not sent.
func HTTPErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, message := http.StatusInternalServerError, ""
		var he *echo.HTTPError
		if errors.As(err, &he) {
			status = he.Code
			if m, ok := he.Message.(string); ok {
				message = m
			}
		}
		code, ok := codeOf[status]
		switch {
		case status >= 500 && !ok:
			code, message = codeInternal, "internal error; see the server log for request "+c.Response().Header().Get(echo.HeaderXRequestID)
			log.Error("request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Request().URL.Path, "err", err)
		case !ok:
			code = codeInvalid
		}
		switch {
		case status == http.StatusNotFound:
			message = "no such route: " + c.Request().Method + " " + c.Request().URL.Path + "; see GET / for the routes"
		case message == "":
			message = http.StatusText(status)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status) // the client has gone if the answer cannot be written; nothing to tell it
			return
		}
		_ = c.JSON(status, map[string]*Error{"error": {Code: code, Message: message}}) // as above
	}
}
