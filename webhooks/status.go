package webhooks

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// handleTwilioStatus takes a Twilio status callback: one-way, so it is answered 204 with an
// empty body, and only once the event is durable in Redis.
func (s *Server) handleTwilioStatus() echo.HandlerFunc {
	const route = "status"
	return func(c echo.Context) error {
		start := time.Now()
		id, e, refused := s.twilioEvent(c, route, start)
		if refused != 0 {
			return c.NoContent(refused)
		}
		return s.store(c, id, route, e, start)
	}
}

// handleTelnyxEvents takes a Telnyx Call Control webhook. An incoming call is answered
// through Call Control by a job (see carrier.Actions) that is stored, with the event, before
// the webhook is acknowledged: the acknowledgement never waits on the answer, and the answer
// is not lost if this instance dies after it.
func (s *Server) handleTelnyxEvents() echo.HandlerFunc {
	const route = "events"
	return func(c echo.Context) error {
		start := time.Now()
		id, cred, ok := s.carrier(c, KindTelnyx)
		if !ok {
			s.d.Metrics.observe("unknown", route, outcomeRejected, start)
			return c.NoContent(http.StatusNotFound)
		}
		body, err := readBody(c.Request())
		if err != nil {
			s.d.Metrics.observe(id, route, outcomeRejected, start)
			return c.NoContent(bodyStatus(err))
		}
		defer putBody(body)
		h := c.Request().Header
		if err := VerifyTelnyx(cred.PublicKey, h.Get("Telnyx-Timestamp"), h.Get("Telnyx-Signature-Ed25519"), body.Bytes(), s.d.Now()); err != nil {
			s.d.Metrics.signatureFail.WithLabelValues(id, route).Inc()
			s.d.Metrics.observe(id, route, outcomeRejected, start)
			return c.NoContent(http.StatusForbidden)
		}
		s.heard(id)
		e, err := ParseTelnyxEvent(id, body.Bytes())
		if err != nil {
			s.d.Metrics.observe(id, route, outcomeRejected, start)
			return c.NoContent(http.StatusBadRequest)
		}
		if e.Direction == call.Inbound && e.State == call.Initiated && s.d.Actions != nil {
			return s.storeWithAnswer(c, id, route, e, start)
		}
		return s.store(c, id, route, e, start)
	}
}

// twilioEvent turns a Twilio request (a status callback or a voice webhook) into the event it
// reports: the carrier must be a configured twilio-kind one (else 404), the body at most
// MaxBody (413), the signature good (403) and the form readable (400). On refusal it returns
// the status to answer, with the request already counted.
func (s *Server) twilioEvent(c echo.Context, route string, start time.Time) (carrier string, e call.Event, refused int) {
	carrier, cred, ok := s.carrier(c, KindTwilio)
	if !ok {
		s.d.Metrics.observe("unknown", route, outcomeRejected, start)
		return "", e, http.StatusNotFound
	}
	body, err := readBody(c.Request())
	if err != nil {
		s.d.Metrics.observe(carrier, route, outcomeRejected, start)
		return "", e, bodyStatus(err)
	}
	defer putBody(body)
	if !VerifyTwilio(cred.AuthToken, s.signedURL(c), body.Bytes(), c.Request().Header.Get("X-Twilio-Signature")) {
		s.d.Metrics.signatureFail.WithLabelValues(carrier, route).Inc()
		s.d.Metrics.observe(carrier, route, outcomeRejected, start)
		return "", e, http.StatusForbidden
	}
	s.heard(carrier)
	if e, err = ParseTwilioCallback(carrier, []byte(c.Request().URL.RawQuery), body.Bytes()); err != nil {
		s.d.Metrics.observe(carrier, route, outcomeRejected, start)
		return "", e, http.StatusBadRequest
	}
	return carrier, e, 0
}

// heard tells the listener that carrier reached us with a request it signed.
func (s *Server) heard(carrier string) {
	if s.d.Heard != nil {
		s.d.Heard.Heard(carrier)
	}
}

func bodyStatus(err error) int {
	if errors.Is(err, errTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// store makes e durable and acknowledges it with 204, or answers 503 fast when Redis cannot
// take it: a carrier must never get a 2xx for an event that was not stored.
func (s *Server) store(c echo.Context, carrier, route string, e call.Event, start time.Time) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.d.AckTimeout)
	defer cancel()
	applied, err := s.d.Store.Apply(ctx, e)
	if err != nil {
		s.d.Metrics.observe(carrier, route, outcomeError, start)
		s.d.Log.Warn("carrier event not stored; answered 503", "carrier", carrier, "route", route,
			"event", e.ID, "err", err)
		c.Response().Header().Set("Retry-After", "1")
		return c.NoContent(http.StatusServiceUnavailable)
	}
	s.d.Metrics.observe(carrier, route, outcomeOf(applied, e), start)
	return c.NoContent(http.StatusNoContent)
}

func outcomeOf(a store.Applied, e call.Event) string {
	switch {
	case a.Outcome == call.Duplicate:
		return outcomeDuplicate
	case a.Outcome == call.Recorded && e.State != call.Unknown:
		return outcomeStale
	}
	return outcomeStored
}

// storeWithAnswer stores an inbound Telnyx call.initiated and the job that answers it, and
// only then acknowledges it: if either cannot be stored the carrier gets 503 and retries. The
// retry finds the event stored (a duplicate, which changes nothing) and stores the job if it
// is missing; the job's id (the call and the action) makes every repeat a no-op, so a call is
// answered once however often its call.initiated arrives.
func (s *Server) storeWithAnswer(c echo.Context, carrier, route string, e call.Event, start time.Time) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.d.AckTimeout)
	defer cancel()
	// The event and the job live in different hash slots, so they are two writes; they are
	// sent at once, and the carrier waits for one round trip, not two. Neither depends on the
	// other being stored first, and the carrier is acknowledged only when both are.
	callID := store.InboundCallID(carrier, e.CarrierCallID)
	job := store.Job{ID: store.JobID(store.JobAnswer, callID), Kind: store.JobAnswer, CallID: callID, Carrier: carrier,
		CarrierCallID: e.CarrierCallID, From: e.From, To: e.To, StreamURL: s.TelnyxStreamURL(carrier, callID), By: "webhook"}
	var jobErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, jobErr = s.d.Actions.EnqueueJob(ctx, job) })
	applied, err := s.d.Store.Apply(ctx, e)
	wg.Wait()
	if err = errors.Join(err, jobErr); err != nil {
		s.d.Metrics.observe(carrier, route, outcomeError, start)
		s.d.Log.Warn("carrier event or its answer not stored; answered 503", "carrier", carrier, "route", route,
			"event", e.ID, "err", err)
		c.Response().Header().Set("Retry-After", "1")
		return c.NoContent(http.StatusServiceUnavailable)
	}
	s.d.Metrics.observe(carrier, route, outcomeOf(applied, e), start)
	return c.NoContent(http.StatusNoContent)
}

// PrepareAnswer readies an inbound Telnyx call for its answer, as the answer job's first
// step: it offers the call to the agents, indexes it, and says where its media stream must
// go. taken is false when nobody can take the call (it is then turned away); an error means
// try again. Running it again for the same call is harmless: the offer is kept in the store,
// so a second run finds it (with its holder) and rings nobody a second time.
func (s *Server) PrepareAnswer(ctx context.Context, j store.Job) (streamURL string, taken bool, err error) {
	in := InboundCall{CallID: j.CallID, Carrier: j.Carrier, CarrierCallID: j.CarrierCallID, From: j.From, To: j.To}
	if s.d.Inbound != nil {
		if err := s.d.Inbound.Accept(ctx, in); err != nil {
			if store.IsUnavailable(err) || ctx.Err() != nil {
				return "", false, err
			}
			s.d.Log.Info("inbound call not taken", "call", j.CallID, "carrier", j.Carrier, "reason", err)
			return "", false, nil
		}
	}
	if err := s.d.Store.Link(ctx, j.CallID, j.Carrier, j.CarrierCallID); err != nil {
		return "", false, err
	}
	return s.TelnyxStreamURLAt(s.mediaBase(ctx, j.CallID), j.Carrier, j.CallID), true, nil
}
