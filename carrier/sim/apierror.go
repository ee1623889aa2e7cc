package sim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is a carrier API error, answered in the shape of the carrier that was asked.
type apiError struct {
	status  int
	code    int    // Twilio error code, or the Telnyx one
	message string // Twilio message, or the Telnyx detail
	pointer string // Telnyx: the request field at fault, as a JSON pointer
}

// defaultErrors gives the code and text each carrier answers an HTTP status with when
// nothing more specific applies.
var defaultErrors = map[Kind]map[int]apiError{
	Twilio: {
		400: {code: 20001, message: "Bad Request"},
		401: {code: 20003, message: "Authenticate"},
		404: {code: 20404, message: "The requested resource was not found"},
		405: {code: 20004, message: "Method not allowed"},
		429: {code: 20429, message: "Too Many Requests"},
		500: {code: 20500, message: "Internal Server Error"},
		503: {code: 20503, message: "Service Unavailable"},
	},
	Telnyx: {
		400: {code: 10015, message: "Bad Request"},
		401: {code: 10009, message: "Authentication failed"},
		404: {code: 10005, message: "Resource not found"},
		422: {code: 10015, message: "Invalid parameter"},
		429: {code: 10011, message: "Too many requests"},
		500: {code: 10007, message: "Unexpected error"},
		503: {code: 10010, message: "Service unavailable"},
	},
}

// writeAPIError answers an error with status, and code and message when they are given.
func writeAPIError(w http.ResponseWriter, kind Kind, status, code int, message string) {
	status, body := errorBody(kind, apiError{status: status, code: code, message: message})
	writeJSON(w, status, body)
}

// errorBody returns the status and body of an error in the carrier's shape, filling in the
// carrier's code and text for the status when e has none.
func errorBody(kind Kind, e apiError) (int, any) {
	d := defaultErrors[kind][e.status]
	d.message = cmp.Or(d.message, http.StatusText(e.status))
	e.code, e.message = cmp.Or(e.code, d.code), cmp.Or(e.message, d.message)
	if kind == Telnyx { // Telnyx titles an error by its status and details it
		title := d.message
		item := map[string]any{"code": strconv.Itoa(e.code), "title": title, "detail": e.message}
		if e.pointer != "" {
			item["source"] = map[string]string{"pointer": e.pointer}
		}
		return e.status, map[string]any{"errors": []any{item}}
	}
	body := map[string]any{"status": e.status, "message": e.message}
	if e.code != 0 {
		body["code"] = e.code
		body["more_info"] = fmt.Sprintf("https://www.twilio.com/docs/errors/%d", e.code)
	}
	return e.status, body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b) // the status is sent; a client that left cannot be told
}
