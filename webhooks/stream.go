package webhooks

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
)

// MediaHandler takes carrier media streams; the agents' WebRTC bridge implements it.
type MediaHandler interface {
	// StreamStarted is called once a stream's start message names its call. It returns what
	// receives the stream's frames, or an error to refuse (and close) the stream.
	StreamStarted(ctx context.Context, s *MediaStream) (MediaReceiver, error)
}

// MediaReceiver receives one stream's frames, in order, from one goroutine.
type MediaReceiver interface {
	// Audio is 20 ms (usually) of G.711 mu-law at 8 kHz. The slice is reused after Audio
	// returns: copy what you keep.
	Audio(ulaw []byte)
	DTMF(digit string)
	// Stopped is called once, when the stream ends for any reason.
	Stopped()
}

// MediaStream is one carrier media stream: the carrier's WebSocket for one call's audio.
type MediaStream struct {
	Carrier       string
	CallID        string
	CarrierCallID string
	StreamID      string
	Kind          Kind

	// bound: the handshake named CallID (per-call path, or a Telnyx token), so the start
	// frame may not name another call.
	bound bool

	mu   sync.Mutex // serialises writes, as gorilla/websocket requires
	conn *websocket.Conn
	buf  []byte
}

// SendAudio sends mu-law audio to the carrier, framed for its kind. Safe for concurrent use.
func (m *MediaStream) SendAudio(ulaw []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Kind == KindTwilio {
		m.buf = AppendTwilioMedia(m.buf[:0], m.StreamID, ulaw)
	} else {
		m.buf = AppendTelnyxMedia(m.buf[:0], ulaw)
	}
	_ = m.conn.SetWriteDeadline(time.Now().Add(2 * time.Second)) // a closed socket fails the write it bounds
	return m.conn.WriteMessage(websocket.TextMessage, m.buf)
}

// CallOutlivesStream says the call may go on when this stream ends, so the stream's end is
// not taken for the call's: a Telnyx call stays up without media until a new stream or a
// hang-up, and a Twilio call waits StreamGrace in the <Pause> after </Connect> for a re-point.
// The call's record says when it ended.
func (m *MediaStream) CallOutlivesStream() bool { return true }

// Close ends the stream from our side (for <Connect><Stream>, the carrier then moves on with
// the call, which for us means it ends).
func (m *MediaStream) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = m.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)) // best effort: the carrier may be gone, and the close goes on without it
	return m.conn.Close()
}

type discardMedia struct{}

func (discardMedia) StreamStarted(context.Context, *MediaStream) (MediaReceiver, error) {
	return discardReceiver{}, nil
}

type discardReceiver struct{}

func (discardReceiver) Audio([]byte) {}
func (discardReceiver) DTMF(string)  {}
func (discardReceiver) Stopped()     {}

// streamSet tracks open streams so Close can end them.
type streamSet struct {
	mu sync.Mutex
	m  map[*MediaStream]struct{}
}

func (s *streamSet) add(m *MediaStream) {
	s.mu.Lock()
	s.m[m] = struct{}{}
	s.mu.Unlock()
}

func (s *streamSet) remove(m *MediaStream) {
	s.mu.Lock()
	delete(s.m, m)
	s.mu.Unlock()
}

func (s *streamSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := range s.m {
		_ = m.conn.Close() // the stream is over; a socket that closes badly is closed all the same
	}
}

// Carriers send no Origin header; the handshake is authenticated by signature or token instead.
var upgrader = websocket.Upgrader{
	ReadBufferSize: 4096, WriteBufferSize: 4096,
	CheckOrigin: func(*http.Request) bool { return true },
}

// streamIdle is how long a stream may go without any message before we give up on it.
const streamIdle = 30 * time.Second

// HandleMedia serves a carrier's media WebSocket. The handshake is verified first: Twilio
// signs it with X-Twilio-Signature over the wss URL; Telnyx does not sign handshakes, so its
// stream URL carries a token that only we can have issued.
//
// On /webhooks/{carrier}/media/{call} the stream is bound to the call in its path, which the
// signature (or token) covers: a handshake captured for one call opens no other call's
// stream, and a start frame that names another call is refused. The legacy
// /webhooks/{carrier}/media (streams configured before per-call paths) takes the call from
// Twilio's unsigned start frame, so there a captured handshake signature opens any call's
// stream of that carrier; Switchboard no longer hands it out.
func (s *Server) HandleMedia() echo.HandlerFunc {
	const route = "media"
	return func(c echo.Context) error {
		start := time.Now()
		carrierID := c.Param("carrier")
		cred, ok := s.d.Carriers.Credentials(carrierID)
		if !ok {
			s.d.Metrics.observe("unknown", route, outcomeRejected, start)
			return c.NoContent(http.StatusNotFound)
		}
		callID, ok := s.verifyHandshake(c, carrierID, cred)
		if !ok {
			s.d.Metrics.signatureFail.WithLabelValues(carrierID, route).Inc()
			s.d.Metrics.observe(carrierID, route, outcomeRejected, start)
			return c.NoContent(http.StatusForbidden)
		}
		// A handshake that names its call (Telnyx's does) is checked before the upgrade;
		// one that does not (Twilio's) when its start frame names the call.
		if callID != "" {
			switch err := s.streamOwner(c.Request().Context(), carrierID, callID); {
			case errors.Is(err, store.ErrNotOwner):
				s.d.Metrics.observe(carrierID, route, outcomeForeign, start)
				return c.NoContent(http.StatusForbidden)
			case err != nil:
				s.d.Metrics.observe(carrierID, route, outcomeError, start)
				c.Response().Header().Set("Retry-After", "1")
				return c.NoContent(http.StatusServiceUnavailable)
			}
		}
		conn, err := upgrader.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		s.d.Metrics.observe(carrierID, route, outcomeStored, start)
		m := &MediaStream{Carrier: carrierID, CallID: callID, Kind: cred.Kind, conn: conn, bound: callID != ""}
		s.streams.add(m)
		s.d.Metrics.streams.Inc()
		defer func() {
			s.streams.remove(m)
			s.d.Metrics.streams.Dec()
			_ = conn.Close() // refused before it started: nothing more to say to it
		}()
		if err := s.serveStream(c.Request().Context(), m); err != nil {
			s.d.Log.Info("media stream ended", "carrier", carrierID, "call", m.CallID, "reason", err)
		}
		return nil
	}
}

// verifyHandshake checks a media handshake and returns the call it is bound to: the call
// in the path, or for Telnyx the one its token was issued for; "" on the legacy Twilio
// route, where the start frame names the call.
func (s *Server) verifyHandshake(c echo.Context, carrierID string, cred Credentials) (callID string, ok bool) {
	pathCall := c.Param("call")
	if pathCall != "" && !isCallID(pathCall) {
		return "", false
	}
	switch cred.Kind {
	case KindTwilio:
		sig := c.Request().Header.Get("X-Twilio-Signature")
		url := s.wsBase + c.Request().RequestURI
		// Twilio's docs: when a handshake does not verify, try the URL with a trailing slash.
		return pathCall, VerifyTwilio(cred.AuthToken, url, nil, sig) || VerifyTwilio(cred.AuthToken, url+"/", nil, sig)
	case KindTelnyx:
		callID = c.QueryParam("sb_call")
		if pathCall != "" {
			if callID != "" && callID != pathCall {
				return "", false
			}
			callID = pathCall
		}
		want := s.mediaToken(carrierID, callID)
		got := c.QueryParam("token")
		return callID, isCallID(callID) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	}
	return "", false
}

var errStreamProtocol = errors.New("media stream: protocol error")

// serveStream reads the stream until it stops, handing frames to the MediaHandler.
func (s *Server) serveStream(ctx context.Context, m *MediaStream) error {
	m.conn.SetReadLimit(MaxBody)
	parse := ParseTwilioMedia
	if m.Kind == KindTelnyx {
		parse = ParseTelnyxMedia
	}
	var (
		msg  MediaMessage
		recv MediaReceiver
	)
	defer func() {
		if recv != nil {
			recv.Stopped()
		}
	}()
	for {
		_ = m.conn.SetReadDeadline(time.Now().Add(streamIdle)) // a closed socket fails the read it bounds
		_, raw, err := m.conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				return nil
			}
			return err
		}
		if err := parse(raw, &msg); err != nil {
			return errors.Join(errStreamProtocol, err)
		}
		switch msg.Kind {
		case MediaStart:
			if recv != nil {
				return errors.Join(errStreamProtocol, errors.New("second start message"))
			}
			switch {
			case !m.bound:
				m.CallID = msg.CallID // legacy route: the unsigned start frame names the call
			case msg.CallID != "" && msg.CallID != m.CallID:
				s.d.Log.Warn("media stream refused: its start names another call", "carrier", m.Carrier,
					"call", m.CallID, "start_call", msg.CallID)
				return errors.Join(errStreamProtocol, errors.New("start names another call than the stream's"))
			}
			if !isCallID(m.CallID) {
				return errors.Join(errStreamProtocol, errors.New("start names no Switchboard call"))
			}
			if m.Kind == KindTwilio {
				// Too late for a 403: closing the socket before any audio is the refusal.
				if err := s.streamOwner(ctx, m.Carrier, m.CallID); err != nil {
					return err
				}
			}
			m.CarrierCallID, m.StreamID = msg.CarrierCallID, msg.StreamID
			if recv, err = s.d.Media.StreamStarted(ctx, m); err != nil {
				recv = nil
				return err
			}
		case MediaAudio:
			if recv != nil {
				recv.Audio(msg.Payload)
			}
		case MediaDTMF:
			if recv != nil {
				recv.DTMF(msg.Digit)
			}
		case MediaStop:
			return nil
		}
	}
}
