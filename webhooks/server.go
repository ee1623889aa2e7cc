package webhooks

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// MaxBody is the largest carrier request body we read; larger ones get 413. Real callbacks
// are a few hundred bytes to a few KiB.
const MaxBody = 64 << 10

// eventStore is where events become durable; *store.Redis implements it.
type eventStore interface {
	Apply(ctx context.Context, e call.Event) (store.Applied, error)
	Link(ctx context.Context, callID, carrier, carrierCallID string) error
	CheckOwner(ctx context.Context, callID, carrier string) error
}

// orphanHanger stores the hang-up of a carrier call that an attempt we gave up on created
// (the store answered call.Orphaned to one of its events); once it returns nil the hang-up is
// durable (dispatch.Actions).
type orphanHanger interface {
	HangupOrphan(ctx context.Context, callID, carrier, carrierCallID string) error
}

// Kind is the protocol family of a carrier, as the webhooks see it.
type Kind int8

const (
	KindUnknown Kind = iota
	KindTwilio
	KindTelnyx
)

// Credentials are what verifying a carrier's requests takes.
type Credentials struct {
	Kind      Kind
	AuthToken string            // twilio: HMAC key of X-Twilio-Signature
	PublicKey ed25519.PublicKey // telnyx: webhook signing key
}

// carrierDirectory finds a configured carrier's credentials. It is called on every request,
// so implementations answer from memory.
type carrierDirectory interface {
	Credentials(carrierID string) (Credentials, bool)
}

// InboundCall is an inbound call that has been stored and needs someone to take it.
type InboundCall struct {
	CallID, Carrier, CarrierCallID, From, To string
}

// ErrNoCapacity is what an inboundRouter answers when nobody can take a call now.
var ErrNoCapacity = errors.New("webhooks: no capacity for the call")

// inboundRouter decides whether an inbound call can be taken (an agent can be offered it).
// Without one, every inbound call is connected to its media stream.
type inboundRouter interface {
	Accept(ctx context.Context, c InboundCall) error
}

// mediaLocator says where a call's media stream must go: the public base URL of the instance
// that holds the call's agent, or "" for this instance. Every instance has its own public URL,
// and an agent's WebRTC session lives on one of them.
type mediaLocator interface {
	MediaBase(ctx context.Context, callID string) (string, error)
}

// jobQueue stores the carrier actions a webhook makes us owe (answering an inbound Telnyx
// call), before the webhook is acknowledged; *dispatch.Actions implements it (and *store.Redis,
// without waking a runner). A job whose id exists already is not stored again, so a duplicate
// or replayed webhook owes nothing more.
type jobQueue interface {
	EnqueueJob(ctx context.Context, j store.Job) (bool, error)
}

// carrierListener is told each time a carrier delivers a request whose signature we
// verified: proof that the carrier can reach us (carrier-level liveness); *dispatch.Breakers
// implements it. It is called on every request, so it must not do I/O.
type carrierListener interface {
	Heard(carrier string)
}

// Deps are what the webhooks need. Store, Carriers and PublicURL are required.
type Deps struct {
	Store    eventStore
	Carriers carrierDirectory
	// PublicURL is SWITCHBOARD_PUBLIC_URL without a trailing slash: signatures are checked
	// against it, and the stream URLs we hand carriers are built from it.
	PublicURL string
	// MediaSecret keys the tokens in Telnyx media stream URLs (Telnyx does not sign its
	// WebSocket handshakes, so the URL itself carries proof that we issued it).
	MediaSecret []byte
	Media       MediaHandler    // nil: streams are accepted and their audio dropped
	Inbound     inboundRouter   // nil: every inbound call is accepted
	Actions     jobQueue        // nil: inbound Telnyx calls are stored but not answered
	Locate      mediaLocator    // nil: every media stream comes to this instance
	Heard       carrierListener // nil: nobody listens
	Orphans     orphanHanger    // nil: orphans are recorded, not hung up
	Metrics     *Metrics
	Log         *slog.Logger
	// AckTimeout bounds how long a carrier waits for us when Redis is slow or down: past it
	// the carrier gets 503 and retries. Default 2 s.
	AckTimeout time.Duration
	// Now is the clock of signature timestamp checks; default time.Now.
	Now func() time.Time
}

// Server answers carriers. Its Handle methods are the carrier-facing routes' handlers;
// cmd/switchboard/routes.go mounts them.
type Server struct {
	d       Deps
	wsBase  string // PublicURL with ws:// or wss://
	streams streamSet
}

// New returns a Server for d.
func New(d Deps) *Server {
	if d.AckTimeout <= 0 {
		d.AckTimeout = 2 * time.Second
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Media == nil {
		d.Media = discardMedia{}
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	ws := "ws" + strings.TrimPrefix(d.PublicURL, "http")
	return &Server{d: d, wsBase: ws, streams: streamSet{m: map[*MediaStream]struct{}{}}}
}

// Close ends every media stream. The server has no other background work: what it owes
// carriers after an acknowledgement is stored as jobs (see dispatch.Actions).
func (s *Server) Close() {
	s.streams.closeAll()
}

// TwilioStreamURL is the media stream URL for one call on a Twilio-kind carrier. Twilio's
// <Stream url> takes no query string, so the call is in the path: Twilio signs the
// handshake over this URL, which makes the signature good for this call's stream only.
func (s *Server) TwilioStreamURL(carrier, callID string) string {
	return s.TwilioStreamURLAt("", carrier, callID)
}

// TwilioStreamURLAt is TwilioStreamURL on the instance whose public URL is base ("" for
// this one).
func (s *Server) TwilioStreamURLAt(base, carrier, callID string) string {
	return s.wsBaseOf(base) + "/webhooks/" + carrier + "/media/" + callID
}

// TelnyxStreamURL is the media stream URL for one call on a Telnyx-kind carrier, with a token
// that proves we issued it.
func (s *Server) TelnyxStreamURL(carrier, callID string) string {
	return s.TelnyxStreamURLAt("", carrier, callID)
}

// TelnyxStreamURLAt is TelnyxStreamURL on the instance whose public URL is base ("" for this
// one). The token verifies on every instance of a deployment: they share the media secret.
func (s *Server) TelnyxStreamURLAt(base, carrier, callID string) string {
	return s.wsBaseOf(base) + "/webhooks/" + carrier + "/media?sb_call=" + callID + "&token=" + s.mediaToken(carrier, callID)
}

func (s *Server) wsBaseOf(base string) string {
	if base == "" {
		return s.wsBase
	}
	return "ws" + strings.TrimPrefix(strings.TrimRight(base, "/"), "http")
}

// mediaBase asks the locator where callID's media goes; on any doubt, here.
func (s *Server) mediaBase(ctx context.Context, callID string) string {
	if s.d.Locate == nil {
		return ""
	}
	base, err := s.d.Locate.MediaBase(ctx, callID)
	if err != nil {
		s.d.Log.Warn("media stream location unknown; pointing it here", "call", callID, "err", err)
		return ""
	}
	return base
}

func (s *Server) mediaToken(carrier, callID string) string {
	m := hmac.New(sha256.New, s.d.MediaSecret)
	m.Write([]byte(carrier + "|" + callID))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// carrier resolves the :carrier of the route to its credentials, for the kind the route
// serves. An unknown carrier and a route of the wrong kind are both 404: nothing is there.
func (s *Server) carrier(c echo.Context, kind Kind) (string, Credentials, bool) {
	id := c.Param("carrier")
	cred, ok := s.d.Carriers.Credentials(id)
	return id, cred, ok && cred.Kind == kind
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads a carrier request body of at most MaxBody bytes into a pooled buffer; the
// caller returns it with putBody once done with the bytes.
func readBody(r *http.Request) (*bytes.Buffer, error) {
	if r.ContentLength > MaxBody {
		return nil, errTooLarge
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBody+1))
	switch {
	case err != nil:
		putBody(buf)
		return nil, err
	case n > MaxBody:
		putBody(buf)
		return nil, errTooLarge
	}
	return buf, nil
}

func putBody(b *bytes.Buffer) {
	if b.Cap() <= 4*MaxBody {
		bodyPool.Put(b)
	}
}

var errTooLarge = errors.New("webhooks: body too large")

// signedURL is the URL the carrier requested, as it signed it: our public base and the
// request URI exactly as received (never rebuilt from Host or X-Forwarded-*).
func (s *Server) signedURL(c echo.Context) string {
	return s.d.PublicURL + c.Request().RequestURI
}
