package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webhooks"
)

// lateTwilio is a Twilio whose create-call answer comes too late: it creates the call, and
// answers only after the client has given up. Then, if callbacks are on, it calls back for
// the call it created, signed, to the URL the request gave, once release says so. It hangs
// calls up and lists them as Twilio does.
type lateTwilio struct {
	t         *testing.T
	srv       *httptest.Server
	token     string
	callbacks bool
	release   func() bool // the callback waits until it holds (the call has failed over)

	mu         sync.Mutex
	calls      map[string]*fakeCall
	callbackAt time.Time
	hungUp     chan string
	work       sync.WaitGroup
}

type fakeCall struct {
	to, from, status string
	created          time.Time
}

func newLateTwilio(t *testing.T, callbacks bool, release func() bool) *lateTwilio {
	l := &lateTwilio{t: t, token: "late-token-0123456789", callbacks: callbacks, release: release,
		calls: map[string]*fakeCall{}, hungUp: make(chan string, 4)}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(func() { l.srv.Close(); l.work.Wait() })
	return l
}

func (l *lateTwilio) config(priority int) carrier.Config {
	return carrier.Config{ID: "primary", Kind: carrier.Twilio, APIURL: l.srv.URL, AccountSID: "AC0123456789abcdef0123456789abcdef",
		AuthToken: l.token, From: "+15550100", Priority: priority, Enabled: true,
		RequestTimeout: carrier.Duration(500 * time.Millisecond),
		Breaker: carrier.BreakerSettings{FailureThreshold: 3, Window: carrier.Duration(10 * time.Second), BucketPeriod: carrier.Duration(time.Second),
			OpenTimeout: carrier.Duration(time.Second), CallbackDeadline: carrier.Duration(time.Second)}}
}

func (l *lateTwilio) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/Calls.json"):
		l.list(w, r)
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/Calls.json"):
		r.ParseForm()
		var b [16]byte
		rand.Read(b[:])
		sid := "CA" + hex.EncodeToString(b[:])
		l.mu.Lock()
		l.calls[sid] = &fakeCall{to: r.PostForm.Get("To"), from: r.PostForm.Get("From"), status: "queued", created: time.Now()}
		l.mu.Unlock()
		<-r.Context().Done() // the client gave up: the call exists, and nobody knows
		if l.callbacks {
			statusURL, _, _ := strings.Cut(r.PostForm.Get("StatusCallback"), "#")
			l.work.Go(func() { l.callBack(statusURL, sid) })
		}
	case r.Method == http.MethodPost && strings.Contains(path, "/Calls/"):
		r.ParseForm()
		sid := strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".json")
		l.mu.Lock()
		c, ok := l.calls[sid]
		if ok && r.PostForm.Get("Status") == "completed" {
			c.status = "completed"
		}
		l.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"code":20404,"message":"not found","status":404}`))
			return
		}
		l.hungUp <- sid
		json.NewEncoder(w).Encode(map[string]string{"sid": sid, "status": "completed"})
	default:
		http.NotFound(w, r)
	}
}

func (l *lateTwilio) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("StartTime>") == "" {
		l.t.Errorf("call list without a StartTime> filter: %s", r.URL.RawQuery)
	}
	type item struct {
		SID         string `json:"sid"`
		Status      string `json:"status"`
		DateCreated string `json:"date_created"`
	}
	var page struct {
		Calls []item `json:"calls"`
	}
	l.mu.Lock()
	for sid, c := range l.calls {
		if c.to == q.Get("To") && c.from == q.Get("From") {
			page.Calls = append(page.Calls, item{sid, c.status, c.created.UTC().Format(time.RFC1123Z)})
		}
	}
	l.mu.Unlock()
	json.NewEncoder(w).Encode(page)
}

// callBack sends the orphan's initiated and ringing callbacks, as Twilio signs them.
func (l *lateTwilio) callBack(statusURL, sid string) {
	for deadline := time.Now().Add(5 * time.Second); !l.release(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Error("the call never failed over")
			return
		}
	}
	l.mu.Lock()
	l.callbackAt = time.Now()
	l.mu.Unlock()
	for i, status := range []string{"initiated", "ringing"} {
		form := url.Values{"CallSid": {sid}, "CallStatus": {status}, "SequenceNumber": {string(rune('0' + i))},
			"AccountSid": {"AC0123456789abcdef0123456789abcdef"}, "Direction": {"outbound-api"}}
		body := form.Encode()
		req, _ := http.NewRequest(http.MethodPost, statusURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", webhooks.SignTwilio(l.token, statusURL, []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			l.t.Errorf("callback: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			l.t.Errorf("orphan's %s callback: %d, want 204", status, resp.StatusCode)
		}
	}
}

// ringing lists the calls to `to` that still ring (or are up).
func (l *lateTwilio) ringing(to string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for sid, c := range l.calls {
		if c.to == to && c.status != "completed" {
			out = append(out, sid)
		}
	}
	return out
}

// registryCredentials lets the webhooks verify with the registry's carriers, as the server does.
type registryCredentials struct{ reg *carrier.Registry }

func (c registryCredentials) Credentials(id string) (webhooks.Credentials, bool) {
	cfg, ok := c.reg.Get(id)
	if !ok || cfg.Kind != carrier.Twilio {
		return webhooks.Credentials{}, false
	}
	return webhooks.Credentials{Kind: webhooks.KindTwilio, AuthToken: cfg.AuthToken}, true
}

// withWebhooks is an instance whose carriers call back to real webhooks on a real port.
func withWebhooks(t *testing.T) *instance {
	in, _ := withWebhooksAt(t)
	return in
}

// withWebhooksAt is withWebhooks, and the webhooks' public URL.
func withWebhooksAt(t *testing.T) (*instance, string) {
	return withWebhooksOn(t, openStore(t, redistest.Namespace(t)), true)
}

// withWebhooksOn is an instance on st with webhooks on a real port, whose actions runner runs
// only if runActions.
func withWebhooksOn(t *testing.T, st *carrierdb.Store, runActions bool) (*instance, string) {
	e := echo.New()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	in := newInstanceRunning(t, st, srv.URL, runActions)
	hooks := webhooks.New(webhooks.Deps{Store: in.st, Carriers: registryCredentials{in.reg}, PublicURL: srv.URL, Orphans: in.actions})
	t.Cleanup(hooks.Close)
	// The carrier-facing callbacks, as cmd/switchboard/routes.go mounts them.
	e.POST("/webhooks/:carrier/voice", hooks.HandleTwilioVoice())
	e.POST("/webhooks/:carrier/status", hooks.HandleTwilioStatus())
	e.POST("/webhooks/:carrier/events", hooks.HandleTelnyxEvents())
	return in, srv.URL
}

// TestDisabledCarrierStillFollowsItsOwnCalls: disabling carriers stops new calls, not the
// calls they carry; and a disabled carrier is as foreign to other calls as an enabled one.
func TestDisabledCarrierStillFollowsItsOwnCalls(t *testing.T) {
	in, public := withWebhooksAt(t)
	primary, spare := newScripted(t, in.st, "primary"), newScripted(t, in.st, "spare")
	in.put(t, primary.config(0, nil), spare.config(1, nil))
	ctx := context.Background()
	c, err := in.placer.Place(ctx, PlaceCall{To: nextNumber()})
	if err != nil || c.Carrier != "primary" {
		t.Fatalf("placed on %q: %v", c.Carrier, err)
	}
	off := func(c *carrier.Config) { c.Enabled = false }
	in.put(t, primary.config(0, off), spare.config(1, off))

	post := func(carrier, query, status string, seq int) int {
		t.Helper()
		u := public + "/webhooks/" + carrier + "/status?" + query
		body := url.Values{"CallSid": {c.CarrierCallID}, "CallStatus": {status}, "SequenceNumber": {string(rune('0' + seq))},
			"AccountSid": {"AC0123456789abcdef0123456789abcdef"}}.Encode()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", webhooks.SignTwilio("token-0123456789", u, []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("spare", "sb_call="+c.ID, "completed", 3); got != http.StatusForbidden {
		t.Errorf("a disabled stranger's callback: %d, want 403", got)
	}
	if got := post("primary", "sb_call="+c.ID+"&sb_attempt=1", "in-progress", 2); got != http.StatusNoContent {
		t.Errorf("the disabled owner's callback: %d, want 204", got)
	}
	if c, _ = in.st.Call(ctx, c.ID); c.State != call.InProgress || c.Carrier != "primary" {
		t.Errorf("call after both: %v on %s", c.State, c.Carrier)
	}
}

// TestLateCreateRingsOnceAndTheOrphanIsHungUp: the primary creates the call but answers
// after the request timeout. The call goes to the secondary; the orphan's first callback,
// which carries the abandoned attempt in its URL, gets it hung up within 3 s, and changes
// nothing in the live record.
func TestLateCreateRingsOnceAndTheOrphanIsHungUp(t *testing.T) {
	in := withWebhooks(t)
	secondary := newScripted(t, in.st, "secondary")
	primary := newLateTwilio(t, true, func() bool { return secondary.placed.Load() > 0 })
	in.put(t, primary.config(0), secondary.config(1, nil))
	to := nextNumber()

	start := time.Now()
	c, err := in.placer.Place(context.Background(), PlaceCall{To: to})
	if err != nil || c.Carrier != "secondary" {
		t.Fatalf("placed on %q: %v", c.Carrier, err)
	}
	if got, want := attemptsOf(c), []string{"primary: timeout → next", "accepted by secondary"}; !slices.Equal(got, want) {
		t.Fatalf("attempts %q, want %q", got, want)
	}
	select {
	case <-primary.hungUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphan was not hung up")
	}
	primary.mu.Lock()
	sinceCallback, sincePlace := time.Since(primary.callbackAt), time.Since(start)
	primary.mu.Unlock()
	t.Logf("orphan hung up %v after its first callback, %v after placing began", sinceCallback, sincePlace)
	if sincePlace > 3*time.Second {
		t.Errorf("two calls rang for %v, want at most 3 s", sincePlace)
	}
	if left := primary.ringing(to); len(left) != 0 || !slices.Equal(secondary.dialled(), []string{to}) {
		t.Errorf("ringing on the primary %v, dialled on the secondary %v", left, secondary.dialled())
	}

	// The orphan's callbacks are in the history, as the failed attempt's, and moved nothing.
	var orphaned []call.Entry
	redistest.Eventually(t, 3*time.Second, "both orphan callbacks and the secondary's stored", func() bool {
		c, err = in.st.Call(context.Background(), c.ID)
		orphaned = nil
		live := false
		for _, h := range c.History {
			if strings.HasPrefix(h.Detail, "orphan of attempt 1") {
				orphaned = append(orphaned, h)
			}
			live = live || h.Carrier == "secondary" && h.State == call.Initiated
		}
		return err == nil && len(orphaned) == 2 && live
	})
	for _, h := range orphaned {
		if h.Changed || h.Carrier != "primary" {
			t.Errorf("orphan entry %+v", h)
		}
	}
	primary.mu.Lock()
	_, repointed := primary.calls[c.CarrierCallID]
	primary.mu.Unlock()
	if c.Carrier != "secondary" || c.CarrierCallID == "" || repointed || c.State != call.Initiated {
		t.Errorf("live record changed by the orphan: %v %s/%s", c.State, c.Carrier, c.CarrierCallID)
	}
}

// TestLateCreateWithoutCallbacksIsFoundByTheLookup: the orphan never calls back; the lookup
// of the primary's live calls to the callee after the failover finds it and hangs it up.
func TestLateCreateWithoutCallbacksIsFoundByTheLookup(t *testing.T) {
	in := withWebhooks(t)
	secondary := newScripted(t, in.st, "secondary")
	primary := newLateTwilio(t, false, nil)
	in.put(t, primary.config(0), secondary.config(1, nil))
	to := nextNumber()

	start := time.Now()
	if c, err := in.placer.Place(context.Background(), PlaceCall{To: to}); err != nil || c.Carrier != "secondary" {
		t.Fatalf("placed on %q: %v", c.Carrier, err)
	}
	select {
	case <-primary.hungUp:
		t.Logf("orphan found and hung up %v after placing began", time.Since(start))
	case <-time.After(8 * time.Second):
		t.Fatal("the orphan was not found")
	}
	if left := primary.ringing(to); len(left) != 0 {
		t.Errorf("still ringing on the primary: %v", left)
	}
}
