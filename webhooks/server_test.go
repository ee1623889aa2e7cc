package webhooks

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// Every goroutine a test starts (subscriptions, batchers, timers, servers) must be gone when
// the package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

const twilioToken = "0123456789abcdef0123456789abcdef"

type directory map[string]Credentials

func (d directory) Credentials(id string) (Credentials, bool) { c, ok := d[id]; return c, ok }

type harness struct {
	t      *testing.T
	st     *store.Redis
	srv    *Server
	http   *httptest.Server
	telnyx ed25519.PrivateKey
}

func newHarness(t *testing.T, redisURL string, tweak ...func(*Deps)) *harness {
	t.Helper()
	st := storetest.Open(t, redisURL, redistest.Namespace(t))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	h := &harness{t: t, st: st, telnyx: priv}
	e := echo.New()
	h.http = httptest.NewServer(e)
	t.Cleanup(h.http.Close)
	d := Deps{
		Store: st,
		Carriers: directory{
			"tw": {Kind: KindTwilio, AuthToken: twilioToken},
			"tx": {Kind: KindTelnyx, PublicKey: pub},
		},
		PublicURL:   h.http.URL,
		MediaSecret: []byte("media-secret-for-tests"),
	}
	for _, f := range tweak {
		f(&d)
	}
	h.srv = New(d)
	t.Cleanup(h.srv.Close)
	mount(e, h.srv)
	return h
}

// twilio posts a form to path, signed as Twilio signs it (unless sign is false).
func (h *harness) twilio(path string, form url.Values, sign bool) *http.Response {
	h.t.Helper()
	body := form.Encode()
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sign {
		req.Header.Set("X-Twilio-Signature", SignTwilio(twilioToken, h.http.URL+path, []byte(body)))
	}
	return h.do(req)
}

func (h *harness) telnyxPost(path string, body []byte, ts time.Time) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set("Telnyx-Timestamp", stamp)
	req.Header.Set("Telnyx-Signature-Ed25519", SignTelnyx(h.telnyx, stamp, body))
	return h.do(req)
}

func (h *harness) do(req *http.Request) *http.Response {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func body(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

func statusForm(sid, status string, seq int, extra ...string) url.Values {
	f := url.Values{"CallSid": {sid}, "AccountSid": {"AC" + strings.Repeat("0", 32)}, "CallStatus": {status},
		"SequenceNumber": {strconv.Itoa(seq)}, "Direction": {"outbound-api"}, "From": {"+15550100"}, "To": {"+15550199"},
		"Timestamp": {"Mon, 05 Nov 2018 14:47:0" + strconv.Itoa(seq) + " +0000"}, "CallbackSource": {"call-progress-events"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func TestTwilioStatusCallbacks(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	ctx := context.Background()
	id := store.NewCallID()
	if _, err := h.st.Apply(ctx, call.Event{ID: "created", CallID: id, State: call.Queued, Direction: call.Outbound}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.ClaimAttempt(ctx, id, "tw", 1); err != nil {
		t.Fatal(err)
	}
	sid := "CA" + strings.Repeat("1f", 16)
	path := "/webhooks/tw/status?sb_call=" + id

	for _, step := range []struct {
		form      url.Values
		sign      bool
		status    int
		wantState call.State
	}{
		{statusForm(sid, "ringing", 1), true, 204, call.Ringing},
		{statusForm(sid, "ringing", 1), true, 204, call.Ringing},   // duplicate
		{statusForm(sid, "initiated", 0), true, 204, call.Ringing}, // out of order: kept, no move back
		{statusForm(sid, "in-progress", 2), false, 403, call.Ringing},
		{statusForm(sid, "in-progress", 2), true, 204, call.InProgress},
		{statusForm(sid, "completed", 3, "CallDuration", "49"), true, 204, call.Completed},
	} {
		resp := h.twilio(path, step.form, step.sign)
		if resp.StatusCode != step.status || body(resp) != "" {
			t.Fatalf("%s: status %d body %q, want %d and no body", step.form.Get("CallStatus"), resp.StatusCode, body(resp), step.status)
		}
		got, err := h.st.Call(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != step.wantState {
			t.Fatalf("after %s: state %v, want %v", step.form.Get("CallStatus"), got.State, step.wantState)
		}
	}
	got, _ := h.st.Call(ctx, id)
	if len(got.History) != 5 || got.CarrierCallID != sid || got.Carrier != "tw" {
		t.Fatalf("history %d entries, carrier %q/%q: %+v", len(got.History), got.Carrier, got.CarrierCallID, got.History)
	}
	if at := got.History[1].At; !at.Equal(time.Date(2018, 11, 5, 14, 47, 1, 0, time.UTC)) {
		t.Errorf("carrier timestamp not kept: %v", at)
	}
	if src := got.History[1].Source; src != call.SourceCallback {
		t.Errorf("a status callback's entry has source %v, want callback", src)
	}
}

func TestCarrierRequestsThatAreRefused(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	sid := "CA" + strings.Repeat("2e", 16)
	form := statusForm(sid, "ringing", 1)
	huge := statusForm(sid, "ringing", 1, "Padding", strings.Repeat("x", MaxBody))
	cases := []struct {
		name string
		resp *http.Response
		want int
	}{
		{"unsigned", h.twilio("/webhooks/tw/status", form, false), 403},
		{"unknown carrier", h.twilio("/webhooks/nope/status", form, true), 404},
		{"wrong kind", h.twilio("/webhooks/tx/status", form, true), 404},
		{"too large", h.twilio("/webhooks/tw/status", huge, true), 413},
		{"malformed", h.twilio("/webhooks/tw/status", url.Values{"CallStatus": {"ringing"}}, true), 400},
		{"bad status", h.twilio("/webhooks/tw/status", statusForm(sid, "exploded", 1), true), 400},
		{"bad call id", h.twilio("/webhooks/tw/status?sb_call=nope", form, true), 400},
	}
	// A forged signature: right shape, wrong key.
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/webhooks/tw/status", strings.NewReader(form.Encode()))
	req.Header.Set("X-Twilio-Signature", SignTwilio("not-the-token", h.http.URL+"/webhooks/tw/status", []byte(form.Encode())))
	cases = append(cases, struct {
		name string
		resp *http.Response
		want int
	}{"forged", h.do(req), 403})

	for _, c := range cases {
		if c.resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.resp.StatusCode, c.want)
		}
		if c.resp.StatusCode == 403 && body(c.resp) != "" {
			t.Errorf("%s: 403 with detail %q", c.name, body(c.resp))
		}
	}
	if _, err := h.st.CallByCarrierID(context.Background(), sid, "tw"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused callback was stored: %v", err)
	}
}

func signedTelnyxFixture(id, kind, ccid, direction string, extra map[string]any) []byte {
	payload := map[string]any{"call_control_id": ccid, "call_leg_id": ccid, "call_session_id": "s-" + ccid,
		"connection_id": "conn", "from": "+15550100", "to": "+15550199", "direction": direction, "state": "parked"}
	for k, v := range extra {
		payload[k] = v
	}
	b, _ := json.Marshal(map[string]any{
		"data": map[string]any{"record_type": "event", "event_type": kind, "id": id,
			"occurred_at": "2018-11-05T14:47:01.521992Z", "payload": payload},
		"meta": map[string]any{"attempt": 1, "delivered_to": "https://example.com/webhooks"},
	})
	return b
}

func TestTelnyxEvents(t *testing.T) {
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Actions = d.Store.(*store.Redis) })
	ctx := context.Background()
	ccid := "v3:" + strings.Repeat("a", 20)
	now := time.Now()

	if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-1", "call.initiated", ccid, "incoming", nil), now); r.StatusCode != 204 {
		t.Fatalf("call.initiated: %d", r.StatusCode)
	}
	if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-3", "call.hangup", ccid, "incoming", map[string]any{"hangup_cause": "user_busy"}), now); r.StatusCode != 204 {
		t.Fatalf("call.hangup: %d", r.StatusCode)
	}
	// The answer arrives after the hangup (reordered), stamped no later than it: the ending
	// chosen because the call had not been answered (busy) is corrected to completed.
	if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-2", "call.answered", ccid, "incoming", nil), now); r.StatusCode != 204 {
		t.Fatalf("call.answered: %d", r.StatusCode)
	}
	if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-4", "call.answered", ccid, "incoming", nil), now.Add(-6*time.Minute)); r.StatusCode != 403 {
		t.Fatalf("stale timestamp: %d, want 403", r.StatusCode)
	}
	got, err := h.st.CallByCarrierID(ctx, ccid, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != call.Completed || got.Direction != call.Inbound || len(got.History) != 3 ||
		!strings.HasPrefix(got.History[2].Detail, "answered before it ended") {
		t.Fatalf("telnyx call: %v %v %d entries", got.State, got.Direction, len(got.History))
	}
	// The answer is owed as a stored job, there before the 204.
	job, err := h.st.JobOf(ctx, store.JobID(store.JobAnswer, got.ID))
	if err != nil || job.Kind != store.JobAnswer || job.CarrierCallID != ccid || job.Carrier != "tx" ||
		!strings.Contains(job.StreamURL, "token=") || job.State != "pending" {
		t.Fatalf("answer job = %+v, %v", job, err)
	}
	url, taken, err := h.srv.PrepareAnswer(ctx, job.Job)
	if err != nil || !taken || !strings.Contains(url, "sb_call="+got.ID) || !strings.Contains(url, "token=") {
		t.Fatalf("PrepareAnswer = %q, %v, %v", url, taken, err)
	}
}

// brokenQueue cannot store jobs, as when Redis fails between the event and its job.
type brokenQueue struct{}

func (brokenQueue) EnqueueJob(context.Context, store.Job) (bool, error) {
	return false, errors.New("redis: connection refused")
}

// TestTelnyxAnswerNotStoredIs503: a call.initiated whose answer job cannot be stored is not
// acknowledged, so Telnyx retries it.
func TestTelnyxAnswerNotStoredIs503(t *testing.T) {
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Actions = brokenQueue{} })
	ccid := "v3:" + strings.Repeat("f", 20)
	r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-9", "call.initiated", ccid, "incoming", nil), time.Now())
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("call.initiated with its job not stored: %d, want 503 with Retry-After", r.StatusCode)
	}
}

type noAgents struct{}

func (noAgents) Accept(context.Context, InboundCall) error { return ErrNoCapacity }

func TestTwilioVoiceWebhook(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	sid := "CA" + strings.Repeat("3d", 16)
	form := url.Values{"CallSid": {sid}, "CallStatus": {"ringing"}, "Direction": {"inbound"},
		"From": {"+15550111"}, "To": {"+15550100"}, "AccountSid": {"AC" + strings.Repeat("0", 32)}}
	resp := h.twilio("/webhooks/tw/voice", form, true)
	doc := body(resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		t.Fatalf("voice: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	id := store.InboundCallID("tw", sid)
	wantURL := "ws" + strings.TrimPrefix(h.http.URL, "http") + "/webhooks/tw/media/" + id
	if !strings.Contains(doc, `<Connect><Stream url="`+wantURL+`"><Parameter name="sb_call" value="`+id+`"/>`) {
		t.Fatalf("TwiML does not connect the stream: %s", doc)
	}
	c, err := h.st.CallByCarrierID(context.Background(), sid, "")
	if err != nil || c.ID != id || c.Direction != call.Inbound || c.From != "+15550111" || c.State != call.Ringing {
		t.Fatalf("inbound call record: %+v %v", c, err)
	}

	busy := newHarness(t, redistest.URL(t), func(d *Deps) { d.Inbound = noAgents{} })
	resp = busy.twilio("/webhooks/tw/voice", form, true)
	if doc := body(resp); resp.StatusCode != 200 || !strings.Contains(doc, "<Hangup/>") || !strings.Contains(doc, "<Say>") {
		t.Fatalf("no capacity: %d %s", resp.StatusCode, doc)
	}
}

func TestStorageDownAnswers503FastAndApologises(t *testing.T) {
	redis := redistest.NewServer(t)
	h := newHarness(t, redis.URL())
	redis.Stop()
	sid := "CA" + strings.Repeat("4c", 16)

	start := time.Now()
	resp := h.twilio("/webhooks/tw/status", statusForm(sid, "ringing", 1, "Direction", "inbound"), true)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status callback with Redis down: %d, want 503", resp.StatusCode)
	}
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("503 took %v", took)
	}
	start = time.Now()
	resp = h.twilio("/webhooks/tw/voice", url.Values{"CallSid": {sid}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}, true)
	if doc := body(resp); resp.StatusCode != 200 || !strings.Contains(doc, "<Hangup/>") {
		t.Fatalf("voice webhook with Redis down: %d %s", resp.StatusCode, doc)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("apology took %v", took)
	}
}

// TestNoRedirects sweeps every registered route and unknown paths with the variants a carrier
// might send, against http and https public URLs: no answer may be a 3xx.
func TestNoRedirects(t *testing.T) {
	for _, public := range []string{"http://voice.example.com", "https://voice.example.com"} {
		h := newHarness(t, redistest.URL(t), func(d *Deps) { d.PublicURL = public })
		e := echo.New()
		mount(e, h.srv)
		var paths []string
		for _, r := range e.Routes() {
			p := strings.ReplaceAll(r.Path, ":carrier", "tw")
			paths = append(paths, p, strings.ReplaceAll(r.Path, ":carrier", "nope"))
		}
		paths = append(paths, "/", "/webhooks", "/webhooks/", "/webhooks/tw", "/x/../webhooks/tw/status")
		var variants []string
		for _, p := range paths {
			variants = append(variants, p, p+"/", strings.TrimSuffix(p, "/"), "/"+p, strings.Replace(p, "/webhooks/", "/webhooks//", 1),
				strings.ToUpper(p), p+"?x=1", p+"/?x=1", p+"#frag")
		}
		for _, v := range variants {
			for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions} {
				req := httptest.NewRequest(method, "http://voice.example.com/", strings.NewReader("CallSid=CA1&CallStatus=ringing"))
				req.URL.Path, req.URL.RawQuery, _ = strings.Cut(v, "?")
				req.RequestURI = v
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code >= 300 && rec.Code < 400 {
					t.Errorf("%s %s (public %s) answered %d", method, v, public, rec.Code)
				}
			}
		}
	}
}

// TestKeepAliveOneConnection: a carrier that sends 1,000 callbacks over keep-alive needs one
// connection.
func TestKeepAliveOneConnection(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	var dials atomic.Int64
	client := &http.Client{Transport: &http.Transport{
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	path := "/webhooks/tw/status"
	for i := range 1000 {
		sid := fmt.Sprintf("CA%032x", i/4)
		form := statusForm(sid, []string{"initiated", "ringing", "in-progress", "completed"}[i%4], i%4, "Direction", "inbound").Encode()
		req, _ := http.NewRequest(http.MethodPost, h.http.URL+path, strings.NewReader(form))
		req.Header.Set("X-Twilio-Signature", SignTwilio(twilioToken, h.http.URL+path, []byte(form)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Close {
			t.Fatalf("callback %d: %d (close=%v)", i, resp.StatusCode, resp.Close)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("1,000 callbacks opened %d connections, want 1", n)
	}
}

func TestMetricsCountOutcomes(t *testing.T) {
	h := newHarness(t, redistest.URL(t))
	sid := "CA" + strings.Repeat("5b", 16)
	h.twilio("/webhooks/tw/status", statusForm(sid, "ringing", 1, "Direction", "inbound"), true)
	h.twilio("/webhooks/tw/status", statusForm(sid, "ringing", 1, "Direction", "inbound"), true)
	h.twilio("/webhooks/tw/status", statusForm(sid, "initiated", 0, "Direction", "inbound"), true)
	h.twilio("/webhooks/tw/status", statusForm(sid, "completed", 2, "Direction", "inbound"), false)
	m := h.srv.d.Metrics
	for outcome, want := range map[string]float64{outcomeStored: 1, outcomeDuplicate: 1, outcomeStale: 1, outcomeRejected: 1} {
		if got := counterValue(t, m.callbacks.WithLabelValues("tw", "status", outcome)); got != want {
			t.Errorf("%s: %v, want %v", outcome, got, want)
		}
	}
	if got := counterValue(t, m.signatureFail.WithLabelValues("tw", "status")); got != 1 {
		t.Errorf("signature failures: %v", got)
	}
}
