package sim_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
)

// switchboard plays Switchboard in tests: it serves the voice webhook, status callbacks,
// Telnyx webhooks and the media WebSocket, verifies every signature, and records what
// arrives.
type switchboard struct {
	t     *testing.T
	srv   *httptest.Server
	token string            // Twilio auth token signatures must use
	pub   ed25519.PublicKey // Telnyx key webhooks must verify against

	mu       sync.Mutex
	statuses []url.Values
	voice    []url.Values
	events   []telnyxEvent
	peers    []*mediaPeer
	bad      []string // signature failures and other protocol errors
	// statusCode answers status callbacks and webhooks (default 204); twiml answers the
	// voice webhook (default: connect a stream to /media with a sb_call parameter).
	statusCode int
	voiceCode  int
	twiml      string
	closeConns bool
	// skip, when set, makes the media answer number its frames in media.chunk and leave
	// out the chunks it names.
	skip map[int]bool
}

type telnyxEvent struct {
	raw  []byte // the body as it arrived
	Data struct {
		RecordType string         `json:"record_type"`
		EventType  string         `json:"event_type"`
		ID         string         `json:"id"`
		OccurredAt string         `json:"occurred_at"`
		Payload    map[string]any `json:"payload"`
	} `json:"data"`
	Meta struct {
		Attempt     int    `json:"attempt"`
		DeliveredTo string `json:"delivered_to"`
	} `json:"meta"`
}

func (e telnyxEvent) payload(key string) string {
	s, _ := e.Data.Payload[key].(string)
	return s
}

// mediaPeer is Switchboard's side of one media WebSocket.
type mediaPeer struct {
	handshake http.Header
	kind      sim.Kind
	mu        sync.Mutex
	messages  []map[string]any // everything received, in order
	audio     []byte
	closed    bool
}

func newSwitchboard(t *testing.T) *switchboard {
	sb := &switchboard{t: t, statusCode: http.StatusNoContent, voiceCode: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /voice", sb.handleVoice)
	mux.HandleFunc("POST /status", sb.handleStatus)
	mux.HandleFunc("POST /events", sb.handleEvents)
	mux.HandleFunc("GET /media", sb.handleMedia)
	sb.srv = httptest.NewServer(mux)
	t.Cleanup(sb.srv.Close)
	t.Cleanup(func() {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		for _, b := range sb.bad {
			t.Error("switchboard saw:", b)
		}
	})
	return sb
}

// use points sb at a carrier's credentials.
func (sb *switchboard) use(c *sim.Carrier) {
	sb.token, sb.pub = c.AuthToken(), c.PublicKey()
}

func (sb *switchboard) url(path string) string { return sb.srv.URL + path }

func (sb *switchboard) wsURL() string {
	return "ws" + strings.TrimPrefix(sb.srv.URL, "http") + "/media"
}

func (sb *switchboard) fail(format string, args ...any) {
	sb.mu.Lock()
	sb.bad = append(sb.bad, fmt.Sprintf(format, args...))
	sb.mu.Unlock()
}

// checkTwilio verifies X-Twilio-Signature over the URL the carrier was given.
func (sb *switchboard) checkTwilio(r *http.Request) url.Values {
	if err := r.ParseForm(); err != nil {
		sb.fail("form: %v", err)
	}
	want := sim.TwilioSignature(sb.token, sb.srv.URL+r.URL.RequestURI(), r.PostForm)
	if got := r.Header.Get("X-Twilio-Signature"); got != want {
		sb.fail("%s: X-Twilio-Signature %q, want %q", r.URL.Path, got, want)
	}
	return r.PostForm
}

func (sb *switchboard) handleVoice(w http.ResponseWriter, r *http.Request) {
	p := sb.checkTwilio(r)
	sb.mu.Lock()
	sb.voice = append(sb.voice, p)
	code, twiml := sb.voiceCode, sb.twiml
	sb.mu.Unlock()
	if twiml == "" {
		twiml = `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="` + sb.wsURL() +
			`"><Parameter name="sb_call" value="CL` + p.Get("CallSid") + `"/></Stream></Connect></Response>`
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	io.WriteString(w, twiml)
}

func (sb *switchboard) handleStatus(w http.ResponseWriter, r *http.Request) {
	p := sb.checkTwilio(r)
	sb.mu.Lock()
	sb.statuses = append(sb.statuses, p)
	code := sb.statusCode
	sb.mu.Unlock()
	if sb.closeConns {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(code)
}

func (sb *switchboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("Telnyx-Timestamp")
	sig, err := base64.StdEncoding.DecodeString(r.Header.Get("Telnyx-Signature-Ed25519"))
	if err != nil || !ed25519.Verify(sb.pub, []byte(ts+"|"+string(body)), sig) {
		sb.fail("telnyx webhook signature does not verify: %s", body)
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		sb.fail("telnyx-timestamp %q is not now", ts)
	}
	e := telnyxEvent{raw: body}
	if err := json.Unmarshal(body, &e); err != nil {
		sb.fail("telnyx webhook: %v", err)
	}
	sb.mu.Lock()
	sb.events = append(sb.events, e)
	code := sb.statusCode
	sb.mu.Unlock()
	w.WriteHeader(code)
}

// handleMedia accepts a media stream, records it, and answers with a 440 Hz tone in the
// stream's framing until the carrier stops.
func (sb *switchboard) handleMedia(w http.ResponseWriter, r *http.Request) {
	peer := &mediaPeer{handshake: r.Header.Clone(), kind: sim.Telnyx}
	if sig := r.Header.Get("X-Twilio-Signature"); sig != "" {
		peer.kind = sim.Twilio
		if want := sim.TwilioSignature(sb.token, sb.wsURL(), nil); sig != want {
			sb.fail("media handshake X-Twilio-Signature %q, want %q", sig, want)
		}
	}
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		sb.fail("upgrade: %v", err)
		return
	}
	defer conn.Close()
	sb.mu.Lock()
	sb.peers = append(sb.peers, peer)
	sb.mu.Unlock()

	// The 440 Hz answer, framed as Switchboard frames it.
	tone := media.NewTone(440, 0.5)
	defer sendEvery20ms(conn, func(n int) map[string]any {
		media := map[string]string{"payload": base64.StdEncoding.EncodeToString(tone.Frame())}
		msg := map[string]any{"event": "media", "media": media}
		if sb.skip != nil {
			media["chunk"] = strconv.Itoa(n)
			if sb.skip[n] {
				return nil
			}
		} else if n == 5 {
			msg = map[string]any{"event": "mark", "mark": map[string]string{"name": "greeting"}}
		}
		return msg
	})()
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			peer.mu.Lock()
			peer.closed = true
			peer.mu.Unlock()
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			sb.fail("media message %q: %v", b, err)
			continue
		}
		peer.mu.Lock()
		peer.messages = append(peer.messages, m)
		if m["event"] == "media" {
			mm, _ := m["media"].(map[string]any)
			payload, _ := mm["payload"].(string)
			audio, err := base64.StdEncoding.DecodeString(payload)
			if err != nil || len(audio) != media.FrameSamples {
				sb.fail("media payload of %d bytes, %v", len(audio), err)
			}
			peer.audio = append(peer.audio, audio...)
		}
		peer.mu.Unlock()
	}
}

// sendEvery20ms writes msg(n) on conn for n = 1, 2, 3, …, one every 20 ms as media frames
// come, skipping a nil message, until conn fails or the returned stop is called; stop waits
// for the writer to end.
func sendEvery20ms(conn *websocket.Conn, msg func(n int) map[string]any) (stop func()) {
	done := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			m := msg(n)
			if m == nil {
				continue
			}
			if conn.WriteJSON(m) != nil {
				return
			}
		}
	}()
	return func() { close(done); <-writerDone }
}

func (p *mediaPeer) events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.messages {
		out = append(out, fmt.Sprint(m["event"]))
	}
	return out
}

func (p *mediaPeer) message(event string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.messages {
		if m["event"] == event {
			return m
		}
	}
	return nil
}

func (p *mediaPeer) heard() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.audio)
}

// Accessors that copy under the lock.

func (sb *switchboard) statusList() []url.Values {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]url.Values(nil), sb.statuses...)
}

func (sb *switchboard) statusesOf(sid string) []url.Values {
	var out []url.Values
	for _, s := range sb.statusList() {
		if s.Get("CallSid") == sid {
			out = append(out, s)
		}
	}
	return out
}

func (sb *switchboard) callStatuses(sid string) []string {
	var out []string
	for _, s := range sb.statusesOf(sid) {
		out = append(out, s.Get("CallStatus"))
	}
	return out
}

func (sb *switchboard) voiceList() []url.Values {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]url.Values(nil), sb.voice...)
}

func (sb *switchboard) eventsOf(id string) []telnyxEvent {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var out []telnyxEvent
	for _, e := range sb.events {
		if e.payload("call_control_id") == id {
			out = append(out, e)
		}
	}
	return out
}

func (sb *switchboard) eventTypes(id string) []string {
	var out []string
	for _, e := range sb.eventsOf(id) {
		out = append(out, e.Data.EventType)
	}
	return out
}

func (sb *switchboard) peer(i int) *mediaPeer {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if i < len(sb.peers) {
		return sb.peers[i]
	}
	return nil
}

// newCarrier starts a carrier with test timings behind a real listener; both are closed
// when the test ends.
func newCarrier(t *testing.T, cfg sim.Config) (*sim.Carrier, *httptest.Server) {
	t.Helper()
	if cfg.Ring == 0 {
		cfg.Ring = 20 * time.Millisecond
	}
	if cfg.RingTimeout == 0 {
		cfg.RingTimeout = 60 * time.Millisecond
	}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	return c, srv
}

// api is a client of the carrier's REST APIs.
type api struct {
	t   *testing.T
	srv *httptest.Server
	c   *sim.Carrier
}

// twilio sends a Twilio REST request; form is nil for a GET.
func (a api) twilio(method, path string, form url.Values) (int, map[string]any) {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, a.srv.URL+"/2010-04-01/Accounts/"+a.c.AccountSID()+path, body)
	req.SetBasicAuth(a.c.AccountSID(), a.c.AuthToken())
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return a.do(req)
}

// telnyx sends a Telnyx REST request; body is nil for a GET.
func (a api) telnyx(method, path string, body any) (int, map[string]any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+a.c.TelnyxAPIKey())
	req.Header.Set("Content-Type", "application/json")
	return a.do(req)
}

func (a api) do(req *http.Request) (int, map[string]any) {
	a.t.Helper()
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			a.t.Fatalf("%s %s: %d %q is not JSON", req.Method, req.URL.Path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, m
}

// dialTwilio places a Twilio call to to, asking for every status callback event.
func (a api) dialTwilio(sb *switchboard, to string) string {
	a.t.Helper()
	status, call := a.twilio("POST", "/Calls.json", url.Values{
		"To": {to}, "From": {"+15005550006"}, "Url": {sb.url("/voice")},
		"StatusCallback":      {sb.url("/status")},
		"StatusCallbackEvent": {"initiated", "ringing", "answered", "completed"},
	})
	if status != http.StatusCreated {
		a.t.Fatalf("create call: %d %v", status, call)
	}
	return call["sid"].(string)
}

func (a api) report(sid string) sim.Report {
	a.t.Helper()
	r, err := a.c.CallReport(sid)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

func (a api) waitStatus(sid, status string) {
	a.t.Helper()
	redistest.Eventually(a.t, 10*time.Second, "call "+sid+" to be "+status, func() bool { return a.report(sid).Status == status })
}
