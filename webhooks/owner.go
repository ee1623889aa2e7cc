package webhooks

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// A verified carrier may touch only its own calls: those it has an attempt on (every carrier
// the placer tried for an outbound call, the carrier an inbound call came in on). The store
// decides, atomically with the write (store.ErrNotOwner); the handlers answer 403 on every
// route, count it and log it. A signature proves who sent a request, not that the call is
// theirs: without this, any configured carrier could end or re-point another's calls.

// refuseForeign answers a verified request about a call that is not the carrier's own: 403,
// nothing stored, counted and logged (ids only, no payload).
func (s *Server) refuseForeign(c echo.Context, carrier, route string, e call.Event, start time.Time) error {
	s.d.Metrics.foreign.WithLabelValues(carrier, route).Inc()
	s.d.Metrics.observe(carrier, route, outcomeForeign, start)
	s.d.Log.Warn("carrier request about a call that is not its own; refused", "carrier", carrier, "route", route,
		"call", e.CallID, "carrier_call_id", e.CarrierCallID, "event", e.ID)
	return c.NoContent(http.StatusForbidden)
}

// hangupOrphan stores the hang-up of the call an abandoned attempt created: the carrier
// created it although its answer to our request came too late (or not at all), and the call
// went on on another carrier. Its event is in the history already and changed nothing. An
// error means the hang-up is not durable: the carrier must get 503 and send the event again.
func (s *Server) hangupOrphan(ctx context.Context, carrier, route, callID string, e call.Event) error {
	if s.d.Orphans == nil {
		return nil
	}
	s.d.Log.Info("event from an abandoned attempt; hanging up the orphan", "carrier", carrier, "route", route,
		"call", callID, "carrier_call_id", e.CarrierCallID, "attempt", e.Attempt)
	return s.d.Orphans.HangupOrphan(ctx, callID, carrier, e.CarrierCallID)
}

// orphanEvent says whether an applied event is an orphan's whose hang-up must be stored: a
// new one (call.Orphaned), or a duplicate of one, since the first delivery may have been
// answered 503 after its event was stored but before its hang-up was; the job's id makes
// storing it twice harmless. The store says which, from the same read that applied it.
func orphanEvent(a store.Applied, e call.Event) bool {
	return a.Outcome == call.Orphaned || a.Orphan && e.CarrierCallID != "" && a.CallID != ""
}

// streamOwner checks that a media stream's carrier owns the call the stream names, before
// any audio flows: nil when it does (or the call is not known, so there is nothing of anyone
// else's to reach), store.ErrNotOwner, counted and logged, when it does not, or the store's
// error.
func (s *Server) streamOwner(ctx context.Context, carrier, callID string) error {
	ctx, cancel := context.WithTimeout(ctx, s.d.AckTimeout)
	defer cancel()
	err := s.d.Store.CheckOwner(ctx, callID, carrier)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case errors.Is(err, store.ErrNotOwner):
		s.d.Metrics.foreign.WithLabelValues(carrier, "media").Inc()
		s.d.Log.Warn("media stream for a call that is not its carrier's; refused", "carrier", carrier, "call", callID)
	}
	return err
}
