package sim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
)

// Kind is the carrier API a call is made through.
type Kind string

// The carrier kinds the simulator speaks.
const (
	Twilio Kind = "twilio"
	Telnyx Kind = "telnyx"
)

// Config configures a Carrier. The zero Config is usable: credentials and keys are generated
// and the timings take their defaults.
type Config struct {
	// AccountSID and AuthToken are the Twilio credentials REST requests must carry (HTTP
	// Basic) and callbacks are signed with. Generated when empty.
	AccountSID string
	AuthToken  string
	// TelnyxAPIKey is the bearer key Telnyx requests must carry and ConnectionID the
	// connection_id a dial must name. Generated when empty.
	TelnyxAPIKey string
	ConnectionID string
	// TelnyxPrivateKey signs Telnyx webhooks. Generated when nil; set it to keep the public
	// key stable across restarts.
	TelnyxPrivateKey ed25519.PrivateKey

	// TwilioVoiceURL and TwilioStatusURL are where inbound Twilio calls are announced (the
	// voice webhook that answers TwiML) and reported (status callbacks).
	TwilioVoiceURL  string
	TwilioStatusURL string
	// TelnyxWebhookURL receives the webhooks of inbound Telnyx calls, and of outbound ones
	// whose dial names no webhook_url.
	TelnyxWebhookURL string

	// Ring is how long a call rings before it is answered, rejected or found busy. Default 1 s.
	Ring time.Duration
	// RingTimeout, when set, caps how long an unanswered call rings before it gives up,
	// whatever the call's own timeout says. Tests set it to milliseconds.
	RingTimeout time.Duration
	// HangupAfter, when set, makes the far end hang up answered calls after that long.
	HangupAfter time.Duration
	// ToneHz is the frequency of the tone sent over media streams. Default 1000 Hz.
	ToneHz float64
	// Echo sends back the audio received instead of the tone.
	Echo bool
	// WatchHz, when set, watches every call's received audio for a pure tone at that
	// frequency (media.ToneWatch) over the whole call, and reports the stretches without it
	// after it was first heard in Report.ToneGaps: the silence a caller hears while a call's
	// media moves between instances. 0 watches nothing.
	WatchHz float64
	// Seed seeds the random source behind fault rates, so runs are repeatable.
	Seed uint64
	// Faults are the faults in force from the start.
	Faults Faults
	// Logger receives the simulator's log; nil discards it.
	Logger *slog.Logger
}

// Carrier is a simulated carrier. Serve Handler over HTTP; Close stops everything it started.
type Carrier struct {
	cfg  Config
	log  *slog.Logger
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	mux  *http.ServeMux
	out  *delivery.Sender
	// userID is the Telnyx account's user id, which Telnyx media start and stop frames carry.
	userID string

	// ctx is cancelled by Close; it bounds every goroutine the carrier starts.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	calls      map[string]*call
	order      []string // call sids in creation order
	commands   map[string]*command
	faults     Faults
	faultsFrom time.Time // when the outage windows started
	rng        *mrand.Rand
	stats      Stats
	deliveries []Delivery
}

// command remembers a Telnyx command_id so a repeat within commandTTL is answered the same
// way and not acted on again. done is closed once status and body are set.
type command struct {
	at     time.Time
	done   chan struct{}
	status int
	body   any
}

const commandTTL = 60 * time.Second

// New returns a carrier ready to serve; credentials and keys missing from cfg are generated.
func New(cfg Config) (*Carrier, error) {
	var err error
	gen := func(s *string, f func() string) {
		if *s == "" {
			*s = f()
		}
	}
	gen(&cfg.AccountSID, func() string { return "AC" + randomHex(16) })
	gen(&cfg.AuthToken, func() string { return randomHex(16) })
	gen(&cfg.TelnyxAPIKey, func() string { return "KEY" + randomHex(16) })
	gen(&cfg.ConnectionID, func() string { return fmt.Sprint(1_000_000_000_000_000 + mrand.Int64N(9_000_000_000_000_000)) })
	if cfg.TelnyxPrivateKey == nil {
		if _, cfg.TelnyxPrivateKey, err = ed25519.GenerateKey(nil); err != nil {
			return nil, fmt.Errorf("sim: generate Ed25519 key: %w", err)
		}
	} else if len(cfg.TelnyxPrivateKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sim: Telnyx private key has %d bytes, want %d", len(cfg.TelnyxPrivateKey), ed25519.PrivateKeySize)
	}
	if cfg.Ring <= 0 {
		cfg.Ring = time.Second
	}
	if cfg.ToneHz <= 0 {
		cfg.ToneHz = 1000
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Carrier{
		userID:     strings.ToUpper(newUUID()),
		cfg:        cfg,
		log:        log,
		priv:       cfg.TelnyxPrivateKey,
		pub:        cfg.TelnyxPrivateKey.Public().(ed25519.PublicKey),
		ctx:        ctx,
		cancel:     cancel,
		calls:      make(map[string]*call),
		commands:   make(map[string]*command),
		faults:     cfg.Faults,
		faultsFrom: time.Now(),
		rng:        mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)),
		stats:      newStats(),
	}
	c.out = newSender(c)
	c.mux = http.NewServeMux()
	c.routes(c.mux)
	return c, nil
}

// Handler serves both carrier APIs and the simulator's control API (/sim/...).
func (c *Carrier) Handler() http.Handler { return c.mux }

// ServeLoopback serves Handler on a free loopback port, in the background, and returns the
// server (for the caller to close, before or after the carrier) and its base URL.
// errorLog may be nil.
func (c *Carrier) ServeLoopback(errorLog *log.Logger) (*http.Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errorLog}
	go func() { _ = srv.Serve(l) }() // ends with ErrServerClosed when the caller closes srv
	return srv, "http://" + l.Addr().String(), nil
}

// Close ends every call without further callbacks, closes the media sockets, and waits for
// every goroutine the carrier started. Requests that arrive afterwards get 503.
func (c *Carrier) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	c.out.Close()
	return nil
}

// AccountSID returns the Twilio account sid.
func (c *Carrier) AccountSID() string { return c.cfg.AccountSID }

// AuthToken returns the Twilio auth token.
func (c *Carrier) AuthToken() string { return c.cfg.AuthToken }

// TelnyxAPIKey returns the Telnyx API key.
func (c *Carrier) TelnyxAPIKey() string { return c.cfg.TelnyxAPIKey }

// ConnectionID returns the Telnyx connection id.
func (c *Carrier) ConnectionID() string { return c.cfg.ConnectionID }

// PublicKey returns the Ed25519 public key Telnyx webhooks verify against.
func (c *Carrier) PublicKey() ed25519.PublicKey { return c.pub }

// PublicKeyBase64 returns the public key as Telnyx shows it: base64 of the 32 raw bytes.
func (c *Carrier) PublicKeyBase64() string { return base64.StdEncoding.EncodeToString(c.pub) }

// ErrNotFound is returned for a call sid the carrier does not know.
var ErrNotFound = errors.New("sim: no such call")

// errClosed is returned once the carrier is closed.
var errClosed = errors.New("sim: carrier closed")

// start registers a new call and starts its goroutines, unless the carrier is closed.
func (c *Carrier) start(k *call) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	c.calls[k.sid] = k
	c.order = append(c.order, k.sid)
	c.stats.CallsCreated++
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		k.run(c.ctx)
	}()
	go func() {
		defer c.wg.Done()
		c.out.Deliver(c.ctx, k.outbox)
	}()
	return nil
}

func (c *Carrier) call(sid string) (*call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.calls[sid]
	if !ok {
		return nil, ErrNotFound
	}
	return k, nil
}

// chance reports true with probability p, from the seeded source.
func (c *Carrier) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64() < p
}

func (c *Carrier) count(f func(s *Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// sleep waits for d, or until ctx or the carrier is done; it reports whether d passed.
func (c *Carrier) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.ctx.Done():
		return false
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID, the shape of Telnyx ids.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
