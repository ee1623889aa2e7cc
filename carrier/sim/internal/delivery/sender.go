package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Timeouts and pool sizes of the callback client, as Twilio's defaults: connect within 5 s,
// at most 15 s for the whole exchange.
const (
	ConnectTimeout      = 5 * time.Second
	readTimeout         = 15 * time.Second
	maxIdleConnsPerHost = 16
	maxConnsPerHost     = 64
	maxAnswer           = 64 << 10 // the most of an answer read: TwiML is small
	defaultReorderHold  = time.Second
)

// Faults are the delivery faults in force at one moment.
type Faults struct {
	// Out is an outage: nothing is sent.
	Out bool
	// DropRate (0..1) of callbacks are never sent; DuplicateRate (0..1) are sent twice.
	DropRate      float64
	DuplicateRate float64
	// Reorder swaps a call's callbacks in pairs; a callback is held at most ReorderHold
	// (default 1 s) for the next one.
	Reorder     bool
	ReorderHold time.Duration
}

// Options are what a Sender asks of the carrier that owns it.
type Options struct {
	// Faults returns the delivery faults in force; nil means none.
	Faults func() Faults
	// Chance reports true with probability p, from the carrier's seeded source; nil is true
	// only for p >= 1.
	Chance func(p float64) bool
	// Redirected is told of every 3xx answer, to a callback or a fetch; none is followed.
	// nil ignores them.
	Redirected func(url string, status int, location string)
}

// Sender is the carrier's one HTTP client for everything it sends Switchboard: callbacks,
// webhooks and TwiML fetches share one bounded keep-alive pool, as a carrier's callback
// pipeline does. It never follows redirects.
type Sender struct {
	opts      Options
	transport *http.Transport
	client    *http.Client
	conns     atomic.Int64
}

// New returns a Sender; Close releases its idle connections.
func New(opts Options) *Sender {
	if opts.Faults == nil {
		opts.Faults = func() Faults { return Faults{} }
	}
	if opts.Chance == nil {
		opts.Chance = func(p float64) bool { return p >= 1 }
	}
	if opts.Redirected == nil {
		opts.Redirected = func(string, int, string) {}
	}
	s := &Sender{opts: opts}
	dialer := &net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}
	s.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				s.conns.Add(1)
			}
			return conn, err
		},
		MaxIdleConns:          4 * maxIdleConnsPerHost,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   ConnectTimeout,
		ResponseHeaderTimeout: readTimeout,
	}
	s.client = &http.Client{
		Transport: s.transport,
		Timeout:   readTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return s
}

// Close closes the idle connections; call it once nothing is being sent.
func (s *Sender) Close() { s.transport.CloseIdleConnections() }

// Conns is the number of TCP connections opened so far.
func (s *Sender) Conns() int64 { return s.conns.Load() }

// Exchange sends one request and returns the status and up to 64 KiB of the answer.
// A 3xx is returned as is and told to Options.Redirected: it is never followed.
func (s *Sender) Exchange(ctx context.Context, method, url string, body []byte, h http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }() // drained below; a close error changes nothing for the delivery
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, resp.Body) // only to reuse the connection; a short read costs a new one
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		s.opts.Redirected(url, resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp.StatusCode, answer, err
}

// IsConnectError reports whether err is a failure to connect, which both carriers retry.
func IsConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
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
	}
}
