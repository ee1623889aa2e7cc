package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// carrierAdmin is the carrier configuration; *carrier.Registry implements it.
type carrierAdmin interface {
	All() []carrier.Config
	Get(id string) (carrier.Config, bool)
	Put(ctx context.Context, cfg carrier.Config, actor string) (carrier.Config, error)
	Delete(ctx context.Context, id, actor string) error
}

// adminLog is what the console reads besides configuration; *carrierdb.Store implements it.
type adminLog interface {
	AuditLog(ctx context.Context, n int64) ([]store.Audit, error)
	CarrierEvents(ctx context.Context, n int64) ([]carrierdb.Event, error)
}

// maxConfigBody bounds an admin PUT: a carrier's configuration is well under 4 KiB.
const maxConfigBody = 64 << 10

// actor names who made a change for the audit log: the admin token does not say who holds
// it, so the address the request came from is what we know. X-Forwarded-For is not used: it
// is whatever the client says.
func actor(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		host = c.Request().RemoteAddr
	}
	return "admin@" + host
}

func HandleListCarriers(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		all := d.Carriers.All()
		out := make([]carrier.PublicConfig, len(all))
		for i, cfg := range all {
			out[i] = cfg.Public()
		}
		return c.JSON(http.StatusOK, map[string]any{"carriers": out})
	}
}

func HandleGetCarrier(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		cfg, ok := d.Carriers.Get(c.Param("id"))
		if !ok {
			return fail(c, d.Log, carrier.ErrNotFound)
		}
		return c.JSON(http.StatusOK, cfg.Public())
	}
}

// HandlePutCarrier creates or replaces a carrier. Secrets left out keep their stored values
// (the console never has them to send back); the answer never contains them.
func HandlePutCarrier(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		var cfg carrier.Config
		dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, maxConfigBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			// The decoder's messages name fields and types, never the values sent.
			return fail(c, d.Log, errorf(codeInvalid, "body is not a carrier configuration: "+decodeMessage(err)))
		}
		if cfg.ID != "" && cfg.ID != id {
			return fail(c, d.Log, &Error{Code: codeInvalid, Message: "id in the body differs from the URL",
				Fields: []FieldError{{Field: "id", Message: fmt.Sprintf("want %q or leave it out", id)}}})
		}
		cfg.ID = id
		_, existed := d.Carriers.Get(id)
		saved, err := d.Carriers.Put(c.Request().Context(), cfg, actor(c))
		if err != nil {
			return fail(c, d.Log, err)
		}
		status := http.StatusOK
		if !existed {
			status = http.StatusCreated
		}
		return c.JSON(status, saved.Public())
	}
}

func HandleDeleteCarrier(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := d.Carriers.Delete(c.Request().Context(), c.Param("id"), actor(c)); err != nil {
			return fail(c, d.Log, err)
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// invalidFields turns validation errors into one API error listing every field.
func invalidFields(err error) *Error {
	e := &Error{Code: codeInvalid, Message: "invalid carrier configuration"}
	var many carrier.ValidationErrors
	var one *carrier.ValidationError
	switch {
	case errors.As(err, &many):
		for _, v := range many {
			e.Fields = append(e.Fields, FieldError{Field: v.Field, Message: v.Message})
		}
	case errors.As(err, &one):
		e.Message = "invalid " + one.Field
		e.Fields = []FieldError{{Field: one.Field, Message: one.Message}}
	}
	return e
}

func decodeMessage(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s: want %s", typ.Field, typ.Type)
	case errors.As(err, &tooLarge):
		return "larger than 64 KiB"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	// Duration and kind parsers say what they expect without the value's secret-free
	// input, and nothing else reaches here.
	return strings.TrimPrefix(err.Error(), "json: ")
}
