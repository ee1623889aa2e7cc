package webhooks

import (
	"context"
	"errors"
	"html"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// Apology is what a caller hears when we cannot take the call, as a whole TwiML document. It
// is valid TwiML with a 200, so the carrier never plays its own "an application error has
// occurred"; releasing a queued caller sends it to the live call (Twilio's call update).
const Apology = `<?xml version="1.0" encoding="UTF-8"?><Response>` + apologyVerbs + `</Response>`

// hangup ends a call at once: the answer to an orphan's voice webhook.
const hangup = `<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>`

const apologyVerbs = `<Say>We are sorry, nobody can take your call right now. Please try again later.</Say><Hangup/>`

// StreamGrace is how long a Twilio call outlives its media stream: Twilio runs the TwiML after
// </Connect> as soon as the stream's WebSocket closes, for whatever reason (an instance killed
// closes it too), so that TwiML first waits this long in a <Pause>, in silence, for another
// instance to re-point the call (a call update with a new <Connect><Stream>, which replaces
// the pause). Only then does an inbound caller hear the apology; an outbound call hangs up.
const StreamGrace = 20 * time.Second

// afterStream is the TwiML after </Connect>: the grace pause, then the apology for an inbound
// caller (who may still be waiting in the queue) or the hang-up for an outbound call.
func afterStream(inbound bool) string {
	pause := `<Pause length="` + strconv.Itoa(int(StreamGrace/time.Second)) + `"/>`
	if inbound {
		return pause + apologyVerbs
	}
	return pause + `<Hangup/>`
}

// TwilioStreamTwiML is the TwiML that connects a call's audio to the media stream at
// streamURL (TwilioStreamURLAt), followed by what the voice answer puts after the stream for
// a call of that direction. The voice answer uses it, and so does a re-point, which sends it
// to the live call so that the call behaves after the switch as before it.
func TwilioStreamTwiML(streamURL, callID string, inbound bool) string {
	return connectStream(streamURL, callID, afterStream(inbound))
}

// voiceBudget bounds the whole voice webhook: within it the carrier gets either the stream or
// the apology, never a timeout.
const voiceBudget = 1500 * time.Millisecond

// HandleTwilioVoice answers a Twilio voice webhook (an inbound call arriving, or the answer of
// an outbound call we placed, whose URL carries our call id) with TwiML that connects the
// call's audio to our media stream.
func (s *Server) HandleTwilioVoice() echo.HandlerFunc {
	const route = "voice"
	return func(c echo.Context) error {
		start := time.Now()
		id, e, refused := s.twilioEvent(c, route, start)
		if refused != 0 {
			return c.NoContent(refused)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), voiceBudget)
		defer cancel()
		callID, orphaned, err := s.takeCall(ctx, id, e)
		if errors.Is(err, store.ErrNotOwner) {
			return s.refuseForeign(c, id, route, e, start)
		}
		if orphaned {
			// The callee answered a call we had given up on: end it now, with no stream. The
			// TwiML ends it; the job is in case the carrier does not run it.
			if err := s.hangupOrphan(ctx, id, route, callID, e); err != nil {
				s.d.Log.Warn("orphan's hang-up not stored; its <Hangup/> ends it", "carrier", id, "call", callID, "err", err)
			}
			s.d.Metrics.observe(id, route, outcomeOrphan, start)
			return twiml(c, hangup)
		}
		if err != nil {
			outcome := outcomeError
			if errors.Is(err, ErrNoCapacity) {
				outcome = outcomeStored
			}
			s.d.Metrics.observe(id, route, outcome, start)
			s.d.Log.Info("voice webhook: call not taken; apologising", "carrier", id, "carrier_call_id", e.CarrierCallID, "reason", err)
			return twiml(c, Apology)
		}
		s.d.Metrics.observe(id, route, outcomeStored, start)
		url := s.TwilioStreamURLAt(s.mediaBase(ctx, callID), id, callID)
		// An inbound call waits for an agent inside the stream, hearing the hold tone. Whatever
		// closes the stream, the call waits StreamGrace for a re-point before the TwiML after
		// it ends the call (afterStream).
		doc := TwilioStreamTwiML(url, callID, e.Direction == call.Inbound)
		return twiml(c, doc)
	}
}

// takeCall stores the call's arrival and decides whether we take it. An inbound call gets its
// derived id and is indexed so the calls API finds it by the carrier's id. A call that is not
// the carrier's is store.ErrNotOwner (whether the event or the link was refused); orphaned
// says the event came from an attempt we gave up on.
func (s *Server) takeCall(ctx context.Context, carrier string, e call.Event) (callID string, orphaned bool, err error) {
	if e.CallID == "" {
		if e.Direction != call.Inbound {
			return "", false, errors.New("outbound call without our call id")
		}
		e.CallID = store.InboundCallID(carrier, e.CarrierCallID)
	}
	if e.Source == call.UnknownSource {
		e.Source = call.SourceCallback
	}
	applied, err := s.d.Store.Apply(ctx, e)
	if err != nil {
		return "", false, err
	}
	if applied.Outcome == call.Orphaned {
		return e.CallID, true, nil
	}
	if e.Direction != call.Inbound {
		return e.CallID, false, nil
	}
	if err := s.d.Store.Link(ctx, e.CallID, carrier, e.CarrierCallID); err != nil {
		return "", false, err
	}
	if s.d.Inbound != nil {
		in := InboundCall{CallID: e.CallID, Carrier: carrier, CarrierCallID: e.CarrierCallID, From: e.From, To: e.To}
		if err := s.d.Inbound.Accept(ctx, in); err != nil {
			return "", false, err
		}
	}
	return e.CallID, false, nil
}

// connectStream connects the call's audio to our media stream at url; after, if not empty,
// is TwiML Twilio runs once the stream is closed.
func connectStream(url, callID, after string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="` + html.EscapeString(url) +
		`"><Parameter name="sb_call" value="` + html.EscapeString(callID) + `"/></Stream></Connect>` + after + `</Response>`
}

func twiml(c echo.Context, doc string) error {
	return c.Blob(http.StatusOK, "text/xml; charset=utf-8", []byte(doc))
}
