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

// HandleTwilioStatus takes a Twilio status callback: one-way, so it is answered 204 with an
// empty body, and only once the event is durable in Redis.
func (s *Server) HandleTwilioStatus() echo.HandlerFunc {
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

// HandleTelnyxEvents takes a Telnyx Call Control webhook. An incoming call is answered
// through Call Control by a job (see dispatch.Actions) that is stored, with the event, before
// the webhook is acknowledged: the acknowledgement never waits on the answer, and the answer
// is not lost if this instance dies after it.
func (s *Server) HandleTelnyxEvents() echo.HandlerFunc {
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
		inbound := e.Direction == call.Inbound && e.State == call.Initiated
		var then func(context.Context, store.Applied) error
		switch {
		case e.Detail == telnyxStreamingFailed:
			failed := telnyxFailedStreamURL(body.Bytes())
			then = func(ctx context.Context, a store.Applied) error { return s.oweRestream(ctx, id, a, e, failed) }
		case inbound:
			// Telnyx names the direction only in call.initiated: its call.answered and
			// call.hangup carry neither it nor a client_state of ours. Index the call now,
			// before the acknowledgement, so they find it even if nobody takes the call
			// (and events that overtook this one, parked meanwhile, are applied). The job
			// that answers the call is stored before the acknowledgement too.
			e.CallID = store.InboundCallID(id, e.CarrierCallID)
			then = func(ctx context.Context, _ store.Applied) error { return s.indexAndOweAnswer(ctx, id, e) }
		}
		return s.storeThen(c, id, route, e, start, then)
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
	return s.storeThen(c, carrier, route, e, start, nil)
}

// storeThen is store with more to make durable before the acknowledgement: then, if not
// nil, runs once the event is stored, and its failure is a 503 as the event's own would be.
func (s *Server) storeThen(c echo.Context, carrier, route string, e call.Event, start time.Time, then func(context.Context, store.Applied) error) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.d.AckTimeout)
	defer cancel()
	if e.Source == call.UnknownSource {
		e.Source = call.SourceCallback
	}
	applied, err := s.d.Store.Apply(ctx, e)
	if errors.Is(err, store.ErrNotOwner) {
		return s.refuseForeign(c, carrier, route, e, start)
	}
	if err == nil && then != nil {
		err = then(ctx, applied)
	}
	if err == nil && orphanEvent(applied, e) {
		err = s.hangupOrphan(ctx, carrier, route, applied.CallID, e)
	}
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
	case a.Outcome == call.Orphaned:
		return outcomeOrphan
	case a.Outcome == call.Recorded && e.State != call.Unknown:
		return outcomeStale
	}
	return outcomeStored
}

// indexAndOweAnswer indexes an inbound Telnyx call whose call.initiated is stored, and stores
// the job that answers it (see dispatch.Actions), both before the acknowledgement: if either
// fails the carrier gets 503 and retries. The retry finds the event stored (a duplicate,
// which changes nothing) and stores the job if it is missing; the job's id (the call and the
// action) makes every repeat a no-op, so a call is answered once however often its
// call.initiated arrives. The index and the job live in different hash slots: they are
// written at once, so the carrier waits for one more round trip, not two.
func (s *Server) indexAndOweAnswer(ctx context.Context, carrier string, e call.Event) error {
	if s.d.Actions == nil {
		return s.d.Store.Link(ctx, e.CallID, carrier, e.CarrierCallID)
	}
	job := store.Job{ID: store.JobID(store.JobAnswer, e.CallID), Kind: store.JobAnswer, CallID: e.CallID, Carrier: carrier,
		CarrierCallID: e.CarrierCallID, From: e.From, To: e.To, StreamURL: s.TelnyxStreamURL(carrier, e.CallID), By: "webhook"}
	var jobErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, jobErr = s.d.Actions.EnqueueJob(ctx, job) })
	err := s.d.Store.Link(ctx, e.CallID, carrier, e.CarrierCallID)
	wg.Wait()
	return errors.Join(err, jobErr)
}

// PrepareAnswer readies an inbound Telnyx call for its answer, as the answer job's first
// step: it offers the call to the agents and says where its media stream must go (the call
// was indexed before its call.initiated was acknowledged). taken is false when nobody can take the call (it is then turned away); an error means
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
	return s.TelnyxStreamURLAt(s.mediaBase(ctx, j.CallID), j.Carrier, j.CallID), true, nil
}
