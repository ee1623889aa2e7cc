// Package proxy is the drill's HTTP and WebSocket reverse proxy on loopback: the load
// balancer in front of the instances and each instance's front door (its public URL). It
// plays the infrastructure a deployment puts in front of Switchboard, and nothing of
// Switchboard itself: the drill measures what carriers would see through it.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Proxy is a small HTTP and WebSocket reverse proxy on loopback. The drill runs three: the
// load balancer in front of both instances (round robin over those whose /readyz answers
// 200), which the calls API and the agents' softphones use; and a front door for each
// instance, which is the instance's public URL, where carriers call back and stream media.
//
// It is deliberately plain. It passes the request URI and headers through unchanged (an
// instance checks Twilio signatures over its public URL plus the request URI as received),
// never answers a 3xx of its own, and keeps clients' connections alive as long as
// Switchboard would (180 s), so the carriers' connection counts mean what they would without
// it. A request whose backend could not be reached, or that was not written to it, goes to
// the next backend; when none could take it, it waits for one for up to hold (a front door
// holds requests through its instance's restart, as HAProxy's connect retries do). A
// carrier's request (/webhooks/...) that reached a backend and then failed is tried again
// too, as a proxy is configured to for idempotent upstreams: Switchboard stores each event
// once whatever the number of deliveries (rule 5), and a media handshake that got no answer
// opened nothing. Any other request that reached a backend
// and failed is answered 502 and never replayed, since the backend may have acted on it
// (placed a call).
type Proxy struct {
	backends  []*Backend
	next      atomic.Uint64
	transport *http.Transport
	rp        *httputil.ReverseProxy

	redirects atomic.Int64 // 3xx answers relayed (must stay 0)
	rerouted  atomic.Int64 // requests sent to another backend after the first could not take them
	held      atomic.Int64 // requests that waited for a backend to come back
	// Hold is how long a request may wait for a backend to come back; set it before Serve.
	Hold        time.Duration
	badGateway  atomic.Int64 // requests answered 502
	abandoned   atomic.Int64 // requests whose client gave up before an answer
	connsIn     atomic.Int64 // connections accepted from clients (carriers and the load)
	connsOut    atomic.Int64 // connections opened to the instances
	healthEvery time.Duration

	mu     sync.Mutex
	errors map[string]int // why requests were answered 502, by route and error
}

type Backend struct {
	name, addr string
	ready      atomic.Bool
	// drained takes the backend out of rotation whatever its health, as an orchestrator
	// takes an instance out of its load balancer before stopping it.
	drained atomic.Bool
}

// maxProxiedBody bounds what the proxy holds to replay a request; carriers' callbacks are
// a few KiB and Switchboard refuses bodies over 64 KiB.
const maxProxiedBody = 1 << 20

// New returns a proxy over backends, each ready until its health check or a failed request
// says otherwise. Serve runs it.
func New(backends ...*Backend) *Proxy {
	p := &Proxy{backends: backends, healthEvery: 100 * time.Millisecond, errors: map[string]int{}}
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	p.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				p.connsOut.Add(1)
			}
			return c, err
		},
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     120 * time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		// Rewrite (not Director) adds no X-Forwarded-* headers; Switchboard never reads them
		// anyway. The backend is chosen in RoundTrip, where a failed one can be skipped.
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "switchboard"
			r.Out.Host = r.In.Host
		},
		Transport:     roundTripper(p.roundTrip),
		FlushInterval: -1,
		ModifyResponse: func(r *http.Response) error {
			if r.StatusCode >= 300 && r.StatusCode < 400 {
				p.redirects.Add(1)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				p.abandoned.Add(1) // nobody is waiting for an answer
				return
			}
			p.badGateway.Add(1)
			p.mu.Lock()
			p.errors[r.Method+" "+route(r.URL.Path)+": "+errorClass(err)]++
			p.mu.Unlock()
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	for _, b := range backends {
		b.ready.Store(true)
	}
	return p
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// order is the backends to try for one request: ready ones in round-robin order, then the
// others, in case the health check is behind.
func (p *Proxy) order() []*Backend {
	n := len(p.backends)
	start := int(p.next.Add(1) % uint64(n))
	ready := make([]*Backend, 0, n)
	var rest []*Backend
	var drained []*Backend
	for i := range n {
		b := p.backends[(start+i)%n]
		switch {
		case b.drained.Load():
			drained = append(drained, b)
		case b.ready.Load():
			ready = append(ready, b)
		default:
			rest = append(rest, b)
		}
	}
	return append(append(ready, rest...), drained...)
}

func (p *Proxy) roundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxProxiedBody+1))
		_ = r.Body.Close() // read to its end or its limit above
		if err != nil {
			return nil, err
		}
		if len(body) > maxProxiedBody {
			return nil, errors.New("proxy: request body too large")
		}
	}
	// A media stream's handshake is replayable too: a failed round trip means no 101 came
	// back, so no stream was opened (HAProxy's retry-on conn-failure empty-response does the
	// same). Without it, a handshake that met its instance closing its listener for a restart
	// (a connection reset from the listen backlog) failed the call.
	replayable := strings.HasPrefix(r.URL.Path, "/webhooks/")
	deadline := time.Now().Add(p.Hold)
	for waited := false; ; waited = true {
		resp, err, again := p.try(r, body, replayable)
		if err == nil {
			if waited {
				p.held.Add(1)
			}
			return resp, nil
		}
		if !again || time.Now().After(deadline) || !sleep(r.Context(), 100*time.Millisecond) {
			return nil, err
		}
	}
}

// try sends the request to each backend in turn until one answers. again says that no
// backend can have acted on it, so it may be tried again later.
func (p *Proxy) try(r *http.Request, body []byte, replayable bool) (_ *http.Response, _ error, again bool) {
	var last error
	for i, b := range p.order() {
		var wrote atomic.Bool
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
		out := r.Clone(httptrace.WithClientTrace(r.Context(), trace))
		out.URL.Host = b.addr
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.ContentLength = int64(len(body))
		}
		resp, err := p.transport.RoundTrip(out)
		if err == nil {
			if i > 0 {
				p.rerouted.Add(1)
			}
			return resp, nil, false
		}
		last = err
		if r.Context().Err() != nil || (wrote.Load() && !isDialError(err) && !replayable) {
			return nil, err, false // the backend may have acted on it
		}
		b.ready.Store(false) // until its health check says otherwise
	}
	return nil, last, true
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ServeHTTP proxies one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

// checkHealth polls each backend's /readyz until ctx ends: a draining instance answers 503
// and gets no new requests.
func (p *Proxy) checkHealth(ctx context.Context) {
	if p.healthEvery <= 0 {
		return // tests set readiness by hand
	}
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	t := time.NewTicker(p.healthEvery)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, b := range p.backends {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+"/readyz", nil)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body) // only to reuse the connection; a short read costs a new one
					_ = resp.Body.Close()                 // as above
				}
				b.ready.Store(err == nil && resp.StatusCode == http.StatusOK)
			})
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Serve runs the proxy on l until ctx ends, then closes every connection.
func (p *Proxy) Serve(ctx context.Context, l net.Listener) error {
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	srv := &http.Server{
		Handler: p,
		// Requests' contexts end with the proxy's, which also ends the copy loops of
		// WebSockets: Close does not touch hijacked connections.
		BaseContext:       func(net.Listener) context.Context { return hctx },
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       180 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				p.connsIn.Add(1)
			}
		},
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.checkHealth(hctx) })
	wg.Go(func() {
		<-hctx.Done()
		_ = srv.Close() // hijacked WebSockets are closed by their copy loops ending
	})
	err := srv.Serve(l)
	stop()
	p.transport.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// route is a path with its ids left out, to count errors by route.
func route(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "webhooks" {
		return "/webhooks/" + parts[1] + "/" + parts[2]
	}
	if len(parts) >= 2 && parts[0] == "api" {
		return "/api/" + parts[1]
	}
	return path
}

// errorClass names a transport error without the addresses in it.
func errorClass(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.Canceled):
		return "client went away"
	}
	return clip(err.Error(), 60)
}

// Stats is what a proxy counted since it started.
type Stats struct {
	Redirects  int64          // 3xx answers relayed (must stay 0)
	Rerouted   int64          // requests sent to another backend after the first could not take them
	Held       int64          // requests that waited for a backend to come back
	BadGateway int64          // requests answered 502
	Abandoned  int64          // requests whose client gave up before an answer
	ConnsIn    int64          // connections accepted from clients (carriers and the load)
	ConnsOut   int64          // connections opened to the backends
	Errors     map[string]int // why requests were answered 502, by route and error
}

// Stats reads the counts now.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	errs := maps.Clone(p.errors)
	p.mu.Unlock()
	return Stats{Redirects: p.redirects.Load(), Rerouted: p.rerouted.Load(), Held: p.held.Load(),
		BadGateway: p.badGateway.Load(), Abandoned: p.abandoned.Load(), ConnsIn: p.connsIn.Load(),
		ConnsOut: p.connsOut.Load(), Errors: errs}
}

// NewBackend is a backend called name (for reports) at addr (host:port).
func NewBackend(name, addr string) *Backend { return &Backend{name: name, addr: addr} }

// Drain takes b out of rotation whatever its health (on) or puts it back (off).
func (b *Backend) Drain(on bool) { b.drained.Store(on) }

// Backends are the proxy's backends, in the order New had them.
func (p *Proxy) Backends() []*Backend { return p.backends }

// clip shortens s to n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
