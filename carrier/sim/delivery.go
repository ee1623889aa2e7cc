package sim

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts and pool sizes of the callback client, as Twilio's defaults: connect within 5 s,
// at most 15 s for the whole exchange.
const (
	connectTimeout      = 5 * time.Second
	readTimeout         = 15 * time.Second
	maxIdleConnsPerHost = 16
	maxConnsPerHost     = 64
	maxAnswer           = 64 << 10 // the most of an answer read: TwiML is small
	defaultReorderHold  = time.Second
)

// sender is the carrier's one HTTP client for everything it sends Switchboard: callbacks,
// webhooks and TwiML fetches share one bounded keep-alive pool, as a carrier's callback
// pipeline does. It never follows redirects.
type sender struct {
	c         *Carrier
	transport *http.Transport
	client    *http.Client
	conns     atomic.Int64
}

func newSender(c *Carrier) *sender {
	s := &sender{c: c}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
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
		TLSHandshakeTimeout:   connectTimeout,
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

func (s *sender) close() { s.transport.CloseIdleConnections() }

// exchange sends one request and returns the status and up to maxAnswer bytes of the answer.
// A 3xx is returned as is, counted and logged: it is never followed.
func (s *sender) exchange(ctx context.Context, method, url string, body []byte, h http.Header) (int, []byte, error) {
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
		s.c.count(func(st *Stats) { st.RedirectsSeen++ })
		s.c.log.Warn("redirect answered, not followed", "url", url, "status", resp.StatusCode,
			"location", resp.Header.Get("Location"))
	}
	return resp.StatusCode, answer, err
}

// callback is one status callback or webhook, ready to send.
type callback struct {
	kind    Kind
	callSID string
	eventID string
	event   string
	seq     int
	method  string
	url     string
	// notBefore is when it fired plus any callback delay in force then.
	notBefore time.Time
	// render returns the body and headers of an attempt; Telnyx bodies carry the attempt.
	render func(attempt int) ([]byte, http.Header)
}

// outbox queues a call's callbacks, without bound, for the call's delivery goroutine.
type outbox struct {
	mu     sync.Mutex
	queue  []*callback
	closed bool
	wake   chan struct{}
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(cb *callback) {
	o.mu.Lock()
	o.queue = append(o.queue, cb)
	o.mu.Unlock()
	o.signal()
}

// close says no more callbacks will come; the queue still drains.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) take() ([]*callback, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queue
	o.queue = nil
	return q, o.closed
}

// deliver sends a call's callbacks one at a time, in the order they fired, until the call
// has ended and every callback is out. With Reorder in force it swaps them in pairs.
func (k *call) deliver(ctx context.Context) {
	var held *callback
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	for {
		cbs, closed := k.outbox.take()
		for _, cb := range cbs {
			if !k.c.sleep(ctx, time.Until(cb.notBefore)) {
				return
			}
			f, _ := k.c.faultsNow()
			switch {
			case f.Reorder && held == nil:
				held = cb
				hold.Reset(cmp.Or(f.ReorderHold, defaultReorderHold))
			case f.Reorder:
				k.c.out.send(ctx, cb)
				k.c.out.send(ctx, held)
				held = nil
				hold.Stop()
			default:
				if held != nil {
					k.c.out.send(ctx, held)
					held = nil
				}
				k.c.out.send(ctx, cb)
			}
		}
		if len(cbs) > 0 {
			continue
		}
		if closed {
			if held != nil {
				k.c.out.send(ctx, held)
			}
			return
		}
		select {
		case <-k.outbox.wake:
		case <-hold.C:
			k.c.out.send(ctx, held)
			held = nil
		case <-ctx.Done():
			return
		}
	}
}

// send delivers one callback unless a drop fault or an outage swallows it, and sends it
// again if the duplicate fault says so.
func (s *sender) send(ctx context.Context, cb *callback) {
	f, out := s.c.faultsNow()
	if out || s.c.chance(f.CallbackDropRate) {
		s.c.record(Delivery{
			Kind: cb.kind, CallSID: cb.callSID, EventID: cb.eventID, Event: cb.event,
			SequenceNumber: cb.seq, URL: cb.url, Dropped: true, At: time.Now(),
		})
		return
	}
	s.post(ctx, cb, false)
	if s.c.chance(f.DuplicateRate) {
		s.post(ctx, cb, true)
	}
}

// post makes the attempts of one callback: a retry on a failed connection, as both carriers
// do, and for Telnyx two more on 408, 429 and 5xx after a short backoff.
func (s *sender) post(ctx context.Context, cb *callback, dup bool) {
	for attempt := 1; ; attempt++ {
		body, h := cb.render(attempt)
		status, _, err := s.exchange(ctx, cb.method, cb.url, body, h)
		if ctx.Err() != nil {
			return // the carrier is closing: no result to record
		}
		d := Delivery{
			Kind: cb.kind, CallSID: cb.callSID, EventID: cb.eventID, Event: cb.event,
			SequenceNumber: cb.seq, URL: cb.url, Attempt: attempt, Duplicate: dup,
			StatusCode: status, Acked: err == nil && status >= 200 && status < 300, At: time.Now(),
		}
		if err != nil {
			d.Error = err.Error()
		}
		s.c.record(d)
		if !d.Acked {
			s.c.log.Warn("callback failed", "url", cb.url, "call", cb.callSID, "event", cb.event,
				"attempt", attempt, "status", status, "err", err)
		}
		var backoff time.Duration
		switch {
		case d.Acked:
			return
		case attempt == 1 && isConnectError(err):
		case cb.kind == Telnyx && attempt <= 2 && (status == 408 || status == 429 || status >= 500):
			backoff = 100 * time.Millisecond << (attempt - 1)
		default:
			return
		}
		if !s.c.sleep(ctx, backoff) {
			return
		}
	}
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
