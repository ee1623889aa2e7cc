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

// handleTelnyxEvents takes a Telnyx Call Control webhook. Incoming calls are answered through
// Call Control after the webhook is acknowledged, so the acknowledgement never waits on it.
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
		e, err := ParseTelnyxEvent(id, body.Bytes())
		if err != nil {
			s.d.Metrics.observe(id, route, outcomeRejected, start)
			return c.NoContent(http.StatusBadRequest)
		}
		if err := s.store(c, id, route, e, start); err != nil || c.Response().Status != http.StatusNoContent {
			return err
		}
		if e.Direction == call.Inbound && e.State == call.Initiated {
			s.answerTelnyx(id, e)
		}
		return nil
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
	if e, err = ParseTwilioCallback(carrier, []byte(c.Request().URL.RawQuery), body.Bytes()); err != nil {
		s.d.Metrics.observe(carrier, route, outcomeRejected, start)
		return "", e, http.StatusBadRequest
	}
	return carrier, e, 0
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
	if e.Source == call.UnknownSource {
		e.Source = call.SourceCallback
	}
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

// answerTelnyx answers an inbound Telnyx call in the background, owned by the Server.
func (s *Server) answerTelnyx(carrier string, e call.Event) {
	if s.d.Telnyx == nil {
		return
	}
	callID := store.InboundCallID(carrier, e.CarrierCallID)
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		in := InboundCall{CallID: callID, Carrier: carrier, CarrierCallID: e.CarrierCallID, From: e.From, To: e.To}
		if s.d.Inbound != nil {
			if err := s.d.Inbound.Accept(ctx, in); err != nil {
				s.d.Log.Info("inbound call not taken", "call", callID, "carrier", carrier, "reason", err)
				return
			}
		}
		if err := s.d.Store.Link(ctx, callID, carrier, e.CarrierCallID); err != nil {
			s.d.Log.Warn("inbound call not indexed", "call", callID, "err", err)
		}
		url := s.TelnyxStreamURLAt(s.mediaBase(ctx, callID), carrier, callID)
		if err := s.d.Telnyx.AnswerTelnyx(ctx, carrier, e.CarrierCallID, url, callID); err != nil {
			s.d.Log.Warn("inbound Telnyx call not answered", "call", callID, "carrier", carrier, "err", err)
		}
	}()
}
