package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/internal/rig"
)

// startProxy serves a proxy over the given backend addresses and returns its URL. Health
// checks are off: the backends are plain handlers, ready until a request fails on them.
func startProxy(t *testing.T, addrs ...string) (*Proxy, string) {
	t.Helper()
	var bs []*Backend
	for i, a := range addrs {
		bs = append(bs, &Backend{name: string(rune('a' + i)), addr: a})
	}
	p := New(bs...)
	p.healthEvery = 0
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return p, "http://" + l.Addr().String()
}

// noRedirects is a client that reports a 3xx instead of following it.
var noRedirects = &http.Client{
	Timeout:       5 * time.Second,
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// The instances check signatures over their public URL (the proxy's) plus the request URI
// as received, so the proxy must pass the URI and the headers through untouched, including
// the variants a carrier might send that a router would "clean" with a redirect.
func TestProxyPassesRequestsThroughUnchanged(t *testing.T) {
	type seen struct{ uri, host, sig, body string }
	got := make(chan seen, 1)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.RequestURI, r.Host, r.Header.Get("X-Twilio-Signature"), string(body)}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer b.Close()
	p, base := startProxy(t, strings.TrimPrefix(b.URL, "http://"))
	for _, uri := range []string{"/webhooks/primary/status?sb_call=CL1", "/webhooks/primary/status/",
		"//webhooks//primary/status", "/webhooks/primary/status?b=2&a=1&a=0", "/webhooks/primary/status?x=%2B1555"} {
		req, _ := http.NewRequest(http.MethodPost, base+uri, strings.NewReader("CallSid=CA1&CallStatus=ringing"))
		req.Header.Set("X-Twilio-Signature", "sig+/=")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		s := <-got
		if resp.StatusCode != http.StatusNoContent || s.uri != uri || s.sig != "sig+/=" ||
			s.body != "CallSid=CA1&CallStatus=ringing" || s.host != strings.TrimPrefix(base, "http://") {
			t.Errorf("%s: answered %d; backend saw %+v", uri, resp.StatusCode, s)
		}
	}
	if p.redirects.Load() != 0 || p.badGateway.Load() != 0 {
		t.Errorf("redirects %d, 502s %d", p.redirects.Load(), p.badGateway.Load())
	}
}

// An instance that is down (connection refused) costs nothing: the request goes to the
// other one, whatever it is.
func TestProxyMovesRequestsOffAnInstanceThatIsDown(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer up.Close()
	down, err := rig.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p, base := startProxy(t, down, strings.TrimPrefix(up.URL, "http://"))
	for range 6 {
		resp, err := noRedirects.Post(base+"/api/calls", "application/json", strings.NewReader(`{"to":"+15552000000"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("answered %d", resp.StatusCode)
		}
	}
	if hits.Load() != 6 || p.badGateway.Load() != 0 {
		t.Errorf("backend got %d of 6, 502s %d", hits.Load(), p.badGateway.Load())
	}
}

// A connection that breaks after the request was written: a carrier's callback is replayed
// on the other instance (storing an event is idempotent), a call placement is not (it may
// have placed the call) and gets 502. Neither is ever a 3xx.
func TestProxyReplaysOnlyCarrierRequests(t *testing.T) {
	var broken, good atomic.Int64
	breaks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		broken.Add(1)
		io.ReadAll(r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer breaks.Close()
	works := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer works.Close()
	// Only the breaking backend is ready, so every request tries it first.
	p, base := startProxy(t, strings.TrimPrefix(breaks.URL, "http://"), strings.TrimPrefix(works.URL, "http://"))
	p.backends[1].ready.Store(false)

	resp, err := noRedirects.Post(base+"/webhooks/primary/status", "application/x-www-form-urlencoded", strings.NewReader("a=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || good.Load() != 1 {
		t.Errorf("callback: answered %d, working backend got %d", resp.StatusCode, good.Load())
	}
	p.backends[1].ready.Store(false)
	p.backends[0].ready.Store(true)
	resp, err = noRedirects.Post(base+"/api/calls", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || good.Load() != 1 {
		t.Errorf("call placement: answered %d, working backend got %d (want 502, not replayed)", resp.StatusCode, good.Load())
	}
	if p.redirects.Load() != 0 {
		t.Errorf("%d redirects", p.redirects.Load())
	}
}
