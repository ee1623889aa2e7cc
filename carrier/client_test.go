package carrier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// captured is what a scripted carrier saw of one request.
type captured struct {
	method, path, contentType, authorization string
	body                                     []byte
}

// fakeCarrier is an httptest server that records each request and answers with the
// handler of the test case.
type fakeCarrier struct {
	*httptest.Server
	requests chan captured
	hits     atomic.Int32
}

func newFakeCarrier(t *testing.T, answer http.HandlerFunc) *fakeCarrier {
	t.Helper()
	f := &fakeCarrier{requests: make(chan captured, 16)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		select {
		case f.requests <- captured{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), body}:
		default:
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		answer(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeCarrier) request(t *testing.T) captured {
	t.Helper()
	select {
	case c := <-f.requests:
		return c
	default:
		t.Fatal("the carrier saw no request")
		return captured{}
	}
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(body, "{") {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/html")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// hang answers nothing until the client gives up.
func hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// slowBody sends the headers of a success and then stalls in the body.
func slowBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, `{"sid":"CA`)
	http.NewResponseController(w).Flush()
	hang(w, r)
}

// closedURL is the address of a listener that no longer listens: connecting is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// transportCase scripts a request that gets no usable answer.
type transportCase struct {
	name    string
	handler http.HandlerFunc // nil: a closed port
	cancel  bool             // the caller cancels first
	want    Outcome
	reason  string
}

var transportCases = []transportCase{
	{"connection refused", nil, false, CarrierFault, "dial failed"},
	{"hangs past the request timeout", hang, false, CarrierFault, "timeout"},
	{"stalls in the body", slowBody, false, CarrierFault, "timeout"},
	{"closes without an answer", hangUp, false, CarrierFault, "connection closed"},
	{"caller cancelled", hang, true, Final, "canceled"},
}

func (tc transportCase) apiURL(t *testing.T) string {
	if tc.handler == nil {
		return closedURL(t)
	}
	return newFakeCarrier(t, tc.handler).URL
}

func (tc transportCase) context(t *testing.T) context.Context {
	// The caller allows a minute; the carrier's request timeout must cut in long before.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if tc.cancel {
		cancel()
	}
	return ctx
}

// testTimeout is short so hang cases finish fast, yet long enough that a refused dial on a busy
// CI machine is still classified as refused rather than as a timeout.
const testTimeout = 400 * time.Millisecond

// testConfig is cfg pointed at apiURL with the tests' short request timeout, normalized as
// the registry would.
func testConfig(t *testing.T, cfg Config, apiURL string) Config {
	t.Helper()
	cfg.APIURL = apiURL
	cfg.RequestTimeout = Duration(testTimeout)
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkElapsed fails if a request took much longer than the carrier's request timeout: the
// default (2 s) or the caller's minute would show here.
func checkElapsed(t *testing.T, start time.Time) {
	t.Helper()
	if d := time.Since(start); d > testTimeout+900*time.Millisecond {
		t.Errorf("took %v with a request timeout of %v", d, testTimeout)
	}
}

// assertClean fails if a result shows any secret.
func assertClean(t *testing.T, r Result, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, testToken, testAPIKey) {
		if s != "" && (strings.Contains(r.String(), s) || strings.Contains(r.Reason, s)) {
			t.Errorf("result shows a secret: %v", r)
		}
	}
}

// placeAnswerCase scripts one carrier answer to Place and the failed result it must give.
type placeAnswerCase struct {
	name          string
	answer        http.HandlerFunc
	wantOutcome   Outcome
	wantReason    string
	wantStatus    int
	wantCode      int
	wantRetryable bool
}

// runPlaceAnswers places req once per case, each through a client newClient builds on a
// carrier scripted with that case's answer; secrets are what no result may show.
func runPlaceAnswers[C Client](t *testing.T, tests []placeAnswerCase, newClient func(*testing.T, string) C, req PlaceRequest, secrets ...string) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t, tt.answer)
			placed, r := newClient(t, f.URL).Place(context.Background(), req)
			if r.Outcome != tt.wantOutcome || r.Reason != tt.wantReason || r.HTTPStatus != tt.wantStatus ||
				r.Code != tt.wantCode || r.Retryable != tt.wantRetryable {
				t.Errorf("got %v status=%d code=%d retryable=%v; want %v %q status=%d code=%d retryable=%v",
					r, r.HTTPStatus, r.Code, r.Retryable, tt.wantOutcome, tt.wantReason, tt.wantStatus, tt.wantCode, tt.wantRetryable)
			}
			if placed != (Placed{}) {
				t.Errorf("placed %+v on a failure", placed)
			}
			if n := f.hits.Load(); n != 1 {
				t.Errorf("the carrier saw %d requests; redirects must not be followed, nothing retried", n)
			}
			assertClean(t, r, secrets...)
		})
	}
}

// runPlaceTransport places req once per transport case through a client newClient builds on
// that case's address; retryable says which cases may be resent (it differs by carrier).
func runPlaceTransport[C Client](t *testing.T, newClient func(*testing.T, string) C, req PlaceRequest, retryable func(transportCase) bool, secrets ...string) {
	t.Helper()
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.apiURL(t))
			start := time.Now()
			_, r := c.Place(tc.context(t), req)
			checkElapsed(t, start)
			if r.Outcome != tc.want || r.Reason != tc.reason || r.HTTPStatus != 0 {
				t.Errorf("got %v (status %d); want %v %q", r, r.HTTPStatus, tc.want, tc.reason)
			}
			if r.Retryable != retryable(tc) {
				t.Errorf("retryable = %v", r.Retryable)
			}
			assertClean(t, r, secrets...)
		})
	}
}

// refusalCase breaks a valid PlaceRequest in one way the client must refuse with wantReason.
type refusalCase struct {
	name       string
	mutate     func(*PlaceRequest)
	wantReason string
}

// runPlaceRefusals places each case's broken request (a valid one from valid, mutated) through
// a client newClient builds on a carrier answering ok; refused says whether a result is the
// refusal wanted, and no request may reach the carrier.
func runPlaceRefusals[C Client](t *testing.T, tests []refusalCase, newClient func(*testing.T, string) C, ok http.HandlerFunc,
	valid func() PlaceRequest, refused func(r Result, wantReason string) bool) {
	t.Helper()
	f := newFakeCarrier(t, ok)
	c := newClient(t, f.URL)
	for _, tt := range tests {
		req := valid()
		tt.mutate(&req)
		if _, r := c.Place(context.Background(), req); !refused(r, tt.wantReason) {
			t.Errorf("%s: %v", tt.name, r)
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("%d refused requests reached the carrier", n)
	}
}

// assertNeverPrinted fails if any fmt verb shows one of secrets in client c, as a pointer or a
// value; what names the secret in the failure.
func assertNeverPrinted[C any](t *testing.T, c *C, what string, secrets ...string) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
		for _, v := range []any{c, *c} {
			s := fmt.Sprintf(verb, v)
			for _, secret := range secrets {
				if strings.Contains(s, secret) {
					t.Errorf("%s shows the %s: %s", verb, what, s)
					break
				}
			}
		}
	}
}

func TestNewClientByKind(t *testing.T) {
	c, err := NewClient(twilioConfig(), nil)
	if _, ok := c.(*TwilioClient); !ok || err != nil {
		t.Errorf("twilio config gave %T, %v", c, err)
	}
	c, err = NewClient(telnyxConfig(), nil)
	if _, ok := c.(*TelnyxClient); !ok || err != nil {
		t.Errorf("telnyx config gave %T, %v", c, err)
	}
	bad := twilioConfig()
	bad.AuthToken = ""
	var ve *ValidationError
	if _, err := NewClient(bad, nil); !errors.As(err, &ve) || ve.Field != "auth_token" {
		t.Errorf("invalid config gave %v", err)
	}
}

func TestNewHTTPClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	target := newFakeCarrier(t, func(w http.ResponseWriter, r *http.Request) { followed.Store(true) })
	from := newFakeCarrier(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	// Our own client, and a caller's client that would follow: neither may.
	for _, hc := range []*http.Client{NewHTTPClient(), clientFor(&http.Client{})} {
		resp, err := hc.Get(from.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || followed.Load() {
			t.Errorf("status %d, followed %v", resp.StatusCode, followed.Load())
		}
	}
	if tr := NewHTTPClient().Transport.(*http.Transport); tr.MaxIdleConnsPerHost < 100 {
		t.Errorf("MaxIdleConnsPerHost %d is too small for hundreds of calls a second", tr.MaxIdleConnsPerHost)
	}
}

func TestRingSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 0, -time.Second: 0, time.Millisecond: 5, 5 * time.Second: 5, 30 * time.Second: 30,
		30*time.Second + time.Millisecond: 31, time.Hour: 600,
	} {
		if got := ringSeconds(d); got != want {
			t.Errorf("ringSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestRequestTimeoutIsCapped(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: DefaultRequestTimeout, -1: DefaultRequestTimeout, time.Second: time.Second,
		15 * time.Second: MaxRequestTimeout,
	} {
		if got := requestTimeout(Config{RequestTimeout: Duration(in)}); got != want {
			t.Errorf("requestTimeout(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestScrubber(t *testing.T) {
	s := scrubber{"", testToken}
	if got := s.string("token " + testToken + " twice " + testToken); strings.Contains(got, testToken) {
		t.Errorf("scrub left the token: %q", got)
	}
	b := []byte("nothing here")
	if got := s.bytes(b); &got[0] != &b[0] {
		t.Error("scrub copied a clean body")
	}
	// A long error with the secret near the end is scrubbed before it is clipped.
	err := &url.Error{Op: "Post", URL: "http://x/" + strings.Repeat("a", 180) + testToken, Err: io.EOF}
	r := s.transport(err)
	if strings.Contains(r.Detail, testToken[:8]) || r.Reason != "connection closed" {
		t.Errorf("transport result %v", r)
	}
}
