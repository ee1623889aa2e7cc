package sim_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

func TestRedirectIsAFailedDelivery(t *testing.T) {
	var followed atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/status/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/voice", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/voice/", http.StatusFound)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	mux.HandleFunc("/voice/", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	redirecting := httptest.NewServer(mux)
	defer redirecting.Close()

	c, srv := newCarrier(t, sim.Config{})
	a := api{t, srv, c}
	_, call := a.twilio("POST", "/Calls.json", url.Values{
		"To": {"+15551230000"}, "From": {"+1"}, "Url": {redirecting.URL + "/voice"},
		"StatusCallback": {redirecting.URL + "/status"}, "StatusCallbackEvent": {"initiated", "ringing", "answered", "completed"},
	})
	sid := call["sid"].(string)
	a.waitStatus(sid, "completed") // the TwiML fetch failed: an application error ends the call
	redistest.Eventually(t, 10*time.Second, "four failed callbacks", func() bool { return c.Stats().CallbacksFailed == 4 })

	s := c.Stats()
	if s.RedirectsSeen != 5 || s.CallbacksDelivered != 0 || s.CallbacksRetried != 0 || s.CallbackHTTPStatus["301"] != 4 || s.VoiceFailed != 1 {
		t.Errorf("stats %+v", s)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("%d redirects followed", n)
	}
	for _, d := range c.Delivered() {
		if d.StatusCode != 301 || d.Acked || d.Attempt != 1 {
			t.Errorf("delivery %+v", d)
		}
	}
}

func TestKeepAliveReusesConnections(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	for range 20 {
		sid := a.dialTwilio(sb, "+15551230001")
		redistest.Eventually(t, 10*time.Second, "the call's callbacks", func() bool { return len(sb.statusesOf(sid)) == 2 })
	}
	redistest.Eventually(t, 10*time.Second, "the carrier to record 40 deliveries", func() bool { return c.Stats().CallbacksDelivered == 40 })
	if s := c.Stats(); s.TCPConnectionsOpened > 4 { // 1, give or take a race with the idle pool
		t.Errorf("40 callbacks over %d connections: %+v", s.TCPConnectionsOpened, s)
	}
}

func TestConnectionCloseCostsAConnectionPerCallback(t *testing.T) {
	sb := newSwitchboard(t)
	sb.closeConns = true
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	for range 5 {
		sid := a.dialTwilio(sb, "+15551230001")
		redistest.Eventually(t, 10*time.Second, "the call's callbacks", func() bool { return len(sb.statusesOf(sid)) == 2 })
	}
	if s := c.Stats(); s.TCPConnectionsOpened != 10 {
		t.Errorf("10 callbacks, each answered with Connection: close, over %d connections", s.TCPConnectionsOpened)
	}
}

func TestConnectFailureIsRetriedOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/status"
	l.Close()

	c, srv := newCarrier(t, sim.Config{})
	a := api{t, srv, c}
	_, call := a.twilio("POST", "/Calls.json", url.Values{
		"To": {"+15551230001"}, "From": {"+1"}, "Url": {"http://x"}, "StatusCallback": {dead},
	})
	a.waitStatus(call["sid"].(string), "busy")
	redistest.Eventually(t, 10*time.Second, "two attempts", func() bool { return c.Stats().CallbacksFailed == 2 })
	s := c.Stats()
	if s.CallbacksSent != 2 || s.CallbacksRetried != 1 || s.CallbackHTTPStatus["error"] != 2 || s.TCPConnectionsOpened != 0 {
		t.Errorf("stats %+v", s)
	}
	d := c.Delivered()
	if len(d) != 2 || d[1].Attempt != 2 || d[1].Error == "" || d[1].EventID != d[0].EventID {
		t.Errorf("deliveries %+v", d)
	}
}

func TestCloseEndsLiveCalls(t *testing.T) {
	sb := newSwitchboard(t)
	c, err := sim.New(sim.Config{Ring: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	a.dialTwilio(sb, "+15551230002") // ringing
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) > 0 })
	c.Close() // returns once every call, timer and socket has stopped; goleak checks the rest
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return sb.peer(0).message("stop") != nil })
	if r := a.report(sid); r.Status != "in-progress" {
		t.Errorf("status %s: a closed carrier sends nothing more", r.Status)
	}
	if status, _ := a.twilio("GET", "/Calls/"+sid+".json", nil); status != 503 {
		t.Errorf("a closed carrier answered %d", status)
	}
}
