package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/carrier/dispatch"
)

// breakerAdmin is the carriers' breakers; *dispatch.Breakers implements it.
type breakerAdmin interface {
	Status(ctx context.Context, carrier string) (dispatch.BreakerStatus, error)
	Force(ctx context.Context, carrier string, f dispatch.Force, actor string) error
}

func HandleGetBreaker(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		st, err := d.Breakers.Status(c.Request().Context(), c.Param("id"))
		if err != nil {
			return fail(c, d.Log, err)
		}
		return c.JSON(http.StatusOK, st)
	}
}

// HandleListBreakers answers every carrier's breaker at once, for the console's live view.
func HandleListBreakers(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		all := d.Carriers.All()
		out := make([]dispatch.BreakerStatus, 0, len(all))
		for _, cfg := range all {
			st, err := d.Breakers.Status(c.Request().Context(), cfg.ID)
			if err != nil {
				continue // deleted meanwhile
			}
			out = append(out, st)
		}
		return c.JSON(http.StatusOK, map[string]any{"breakers": out})
	}
}

// HandleForceBreaker drains a carrier (open), pins it in use (closed), or hands it back to
// the breaker (auto), for every instance.
func HandleForceBreaker(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body struct {
			State string `json:"state"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<10)).Decode(&body); err != nil {
			return fail(c, d.Log, errorf(codeInvalid, `want {"state":"open"|"closed"|"auto"}`))
		}
		f, err := dispatch.ParseForce(body.State)
		if err != nil {
			return fail(c, d.Log, &Error{Code: codeInvalid, Message: `want {"state":"open"|"closed"|"auto"}`,
				Fields: []FieldError{{Field: "state", Message: "want open, closed or auto"}}})
		}
		id := c.Param("id")
		if err := d.Breakers.Force(c.Request().Context(), id, f, actor(c)); err != nil {
			return fail(c, d.Log, err)
		}
		st, err := d.Breakers.Status(c.Request().Context(), id)
		if err != nil {
			return fail(c, d.Log, err)
		}
		return c.JSON(http.StatusOK, st)
	}
}
