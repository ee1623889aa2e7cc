package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// router orders carriers for a call; *dispatch.Router implements it.
type router interface {
	Route() dispatch.Route
}

// routeAnswer is the dry run: the carrier a call to To would try first now, the order of
// the rest, and why the others are left out. Within a priority the order is drawn by weight
// for each call, so two dry runs may differ where weights split traffic.
type routeAnswer struct {
	To      string `json:"to"`
	Carrier string `json:"carrier"` // "" when no carrier would take it
	Reason  string `json:"reason"`
	dispatch.Route
}

func HandleRoute(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		to := c.QueryParam("to")
		if !carrier.IsE164(to) {
			return fail(c, d.Log, &Error{Code: codeInvalid, Message: "to must be an E.164 number such as +15551234567",
				Fields: []FieldError{{Field: "to", Message: "not an E.164 number"}}})
		}
		r := d.Router.Route()
		a := routeAnswer{To: to, Route: r}
		if len(r.Candidates) == 0 {
			a.Reason = "no carrier is enabled and available"
		} else {
			first := r.Candidates[0]
			a.Carrier = first.Carrier
			a.Reason = "lowest priority (" + strconv.Itoa(first.Priority) + ") with an available breaker"
			if peers := samePriority(r.Candidates, first.Priority); peers > 1 {
				a.Reason += "; drawn by weight (" + strconv.Itoa(first.Weight) + ") among " + strconv.Itoa(peers) + " carriers of that priority"
			}
			if first.Breaker == dispatch.BreakerHalfOpen {
				a.Reason += "; half-open: this call would be the trial call"
			}
		}
		return c.JSON(http.StatusOK, a)
	}
}

func samePriority(cs []dispatch.Candidate, p int) int {
	n := 0
	for _, c := range cs {
		if c.Priority == p {
			n++
		}
	}
	return n
}

func HandleAudit(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		entries, err := d.AdminLog.AuditLog(c.Request().Context(), limit(c, 100, 1000))
		if err != nil {
			return fail(c, d.Log, err)
		}
		if entries == nil {
			entries = []store.Audit{}
		}
		return c.JSON(http.StatusOK, map[string]any{"entries": entries})
	}
}

// HandleCarrierEvents lists recent failovers and breaker changes across the fleet.
func HandleCarrierEvents(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		events, err := d.AdminLog.CarrierEvents(c.Request().Context(), limit(c, 50, 1000))
		if err != nil {
			return fail(c, d.Log, err)
		}
		if events == nil {
			events = []carrierdb.Event{}
		}
		return c.JSON(http.StatusOK, map[string]any{"events": events})
	}
}

func limit(c echo.Context, def, most int64) int64 {
	n, err := strconv.ParseInt(c.QueryParam("limit"), 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return min(n, most)
}
