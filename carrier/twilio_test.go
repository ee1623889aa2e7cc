package carrier

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const twilioSID = "AC0123456789abcdef0123456789abcdef"

var twilioBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(twilioSID+":"+testToken))

func newTestTwilio(t *testing.T, apiURL string) *TwilioClient {
	t.Helper()
	return NewTwilioClient(testConfig(t, twilioConfig(), apiURL), NewHTTPClient())
}

func twilioRequest() PlaceRequest {
	return PlaceRequest{
		CallID: "c-42", Attempt: 1, To: "+15551234567",
		VoiceURL:    "https://sb.example/webhooks/primary/voice?call=c-42",
		StatusURL:   "https://sb.example/webhooks/primary/status?call=c-42",
		RingTimeout: 25 * time.Second,
	}
}

const twilioCreated = `{"account_sid":"` + twilioSID + `","api_version":"2010-04-01","direction":"outbound-api",
	"from":"+15550001111","to":"+15551234567","sid":"CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"queued",
	"uri":"/2010-04-01/Accounts/` + twilioSID + `/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"}`

func TestTwilioPlaceSendsTheCall(t *testing.T) {
	f := newFakeCarrier(t, reply(http.StatusCreated, twilioCreated))
	c := newTestTwilio(t, f.URL+"/")

	placed, r := c.Place(context.Background(), twilioRequest())
	if r.Outcome != Accepted || r.Reason != "accepted" || r.HTTPStatus != 201 {
		t.Fatalf("result %v", r)
	}
	if placed != (Placed{CarrierCallID: "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Status: "queued"}) {
		t.Errorf("placed %+v", placed)
	}

	got := f.request(t)
	if got.method != http.MethodPost || got.path != "/2010-04-01/Accounts/"+twilioSID+"/Calls.json" {
		t.Errorf("%s %s", got.method, got.path)
	}
	if got.contentType != "application/x-www-form-urlencoded" || got.authorization != twilioBasic {
		t.Errorf("content-type %q, authorization %q", got.contentType, got.authorization)
	}
	form, err := url.ParseQuery(string(got.body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"To":                   {"+15551234567"},
		"From":                 {"+15550001111"},
		"Url":                  {"https://sb.example/webhooks/primary/voice?call=c-42"},
		"Method":               {"POST"},
		"StatusCallback":       {"https://sb.example/webhooks/primary/status?call=c-42"},
		"StatusCallbackMethod": {"POST"},
		"StatusCallbackEvent":  {"initiated", "ringing", "answered", "completed"},
		"Timeout":              {"25"},
	}
	if fmt.Sprint(form) != fmt.Sprint(want) {
		t.Errorf("form\n got %v\nwant %v", form, want)
	}
}

func TestTwilioPlaceOptions(t *testing.T) {
	f := newFakeCarrier(t, reply(http.StatusCreated, twilioCreated))
	c := newTestTwilio(t, f.URL)
	req := twilioRequest()
	req.From, req.StatusEvents, req.RingTimeout = "+15559998888", []string{"answered", "completed"}, 0
	if _, r := c.Place(context.Background(), req); r.Outcome != Accepted {
		t.Fatal(r)
	}
	form, _ := url.ParseQuery(string(f.request(t).body))
	if form.Get("From") != "+15559998888" || !slices.Equal(form["StatusCallbackEvent"], []string{"answered", "completed"}) || form.Has("Timeout") ||
		form.Has("FallbackUrl") || form.Has("FallbackMethod") {
		t.Errorf("form %v", form)
	}

	// Another instance to fetch TwiML from if ours is gone: Twilio's FallbackUrl, POSTed.
	req.VoiceFallbackURL = "https://sb2.example/webhooks/primary/voice?call=c-42"
	if _, r := c.Place(context.Background(), req); r.Outcome != Accepted {
		t.Fatal(r)
	}
	form, _ = url.ParseQuery(string(f.request(t).body))
	if form.Get("FallbackUrl") != req.VoiceFallbackURL || form.Get("FallbackMethod") != "POST" {
		t.Errorf("form %v", form)
	}
	req.VoiceFallbackURL = "sb2.example/voice"
	if _, r := c.Place(context.Background(), req); r.Outcome != Final || !strings.Contains(r.Detail, "voice fallback url") {
		t.Errorf("a relative fallback URL: %+v", r)
	}
}

func TestTwilioPlaceAnswers(t *testing.T) {
	tests := []placeAnswerCase{
		{"503", reply(503, twilioErr(503, 20503, "Service Unavailable")), CarrierFault, "twilio 20503", 503, 20503, false},
		{"503 empty", reply(503, ""), CarrierFault, "http 503", 503, 0, false},
		{"429", reply(429, twilioErr(429, 20429, "Too Many Requests")), CarrierFault, "twilio 20429 too many requests", 429, 20429, true},
		{"408", reply(408, ""), CarrierFault, "http 408", 408, 0, true},
		{"401", reply(401, twilioErr(401, 20003, "Authenticate")), CarrierFault, "twilio 20003 credentials rejected", 401, 20003, false},
		{"403", reply(403, ""), CarrierFault, "http 403", 403, 0, false},
		{"404 wrong account path", reply(404, `{"status":404,"message":"The requested resource was not found"}`), CarrierFault, "http 404", 404, 0, false},
		{"400 21211 invalid To", reply(400, twilioErr(400, 21211, "The 'To' number +1555 is not a valid phone number.")), Final, "twilio 21211 invalid number", 400, 21211, false},
		{"400 21217", reply(400, twilioErr(400, 21217, "Phone number does not appear to be valid")), Final, "twilio 21217 invalid number", 400, 21217, false},
		{"400 unknown code", reply(400, twilioErr(400, 21606, "Something else")), CarrierFault, "twilio 21606", 400, 21606, false},
		{"500 with HTML", reply(500, "<html><body><h1>500 Internal Server Error</h1></body></html>"), CarrierFault, "http 500", 500, 0, false},
		{"201 with garbage JSON", reply(201, `{"sid":`), CarrierFault, "bad response", 201, 0, false},
		{"201 without sid", reply(201, `{"status":"queued"}`), CarrierFault, "bad response", 201, 0, false},
		{"200 HTML page at a wrong api_url", reply(200, "<html>Welcome</html>"), CarrierFault, "bad response", 200, 0, false},
		{"201 past the body limit", reply(201, `{"pad":"`+strings.Repeat("x", maxBody)+`","sid":"CA1"}`), CarrierFault, "bad response", 201, 0, false},
		{"302 redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, CarrierFault, "unexpected redirect", 302, 0, false},
		{"307 redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, CarrierFault, "unexpected redirect", 307, 0, false},
	}
	runPlaceAnswers(t, tests, newTestTwilio, twilioRequest(), twilioBasic)
}

func TestTwilioPlaceTransport(t *testing.T) {
	// Only a refused connection provably sent nothing; anything else may have
	// created the call on Twilio.
	runPlaceTransport(t, newTestTwilio, twilioRequest(), func(tc transportCase) bool { return tc.reason == "dial failed" }, twilioBasic)
}

func TestTwilioNeverShowsTheToken(t *testing.T) {
	// A misbehaving server that echoes our credentials back in its error message.
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, pass, _ := r.BasicAuth()
			reply(status, twilioErr(status, 20003, "bad token "+pass+" in "+r.Header.Get("Authorization")))(w, r)
		}
	}
	for _, status := range []int{400, 401, 500} {
		f := newFakeCarrier(t, echo(status))
		c := newTestTwilio(t, f.URL)
		_, r := c.Place(context.Background(), twilioRequest())
		assertClean(t, r, twilioBasic)
		if !strings.Contains(r.Detail, redactedMark) {
			t.Errorf("detail %q should show where the secret was", r.Detail)
		}
		assertClean(t, c.Hangup(context.Background(), "CA1"), twilioBasic)
	}
	c := newTestTwilio(t, "http://127.0.0.1:1")
	assertNeverPrinted(t, c, "token", testToken, twilioBasic)
}

func TestTwilioPlaceRefusesBadRequests(t *testing.T) {
	tests := []refusalCase{
		{"to not E.164", func(r *PlaceRequest) { r.To = "5551234567" }, "invalid number"},
		{"to empty", func(r *PlaceRequest) { r.To = "" }, "invalid number"},
		{"from not E.164", func(r *PlaceRequest) { r.From = "anonymous" }, "invalid request"},
		{"no voice url", func(r *PlaceRequest) { r.VoiceURL = "" }, "invalid request"},
		{"relative status url", func(r *PlaceRequest) { r.StatusURL = "/webhooks/x/status" }, "invalid request"},
		{"unknown event", func(r *PlaceRequest) { r.StatusEvents = []string{"ringing", "answerd"} }, "invalid request"}, //nolint:misspell // a typo is the point
		{"negative ring timeout", func(r *PlaceRequest) { r.RingTimeout = -time.Second }, "invalid request"},
	}
	runPlaceRefusals(t, tests, newTestTwilio, reply(http.StatusCreated, twilioCreated), twilioRequest, func(r Result, wantReason string) bool {
		return r.Outcome == Final && r.Reason == wantReason && r.Detail != ""
	})
}

func TestTwilioHangup(t *testing.T) {
	tests := []struct {
		name          string
		answer        http.HandlerFunc
		wantOutcome   Outcome
		wantReason    string
		wantRetryable bool
	}{
		{"200", reply(200, `{"sid":"CA1","status":"completed"}`), Accepted, "accepted", false},
		{"already ended", reply(400, twilioErr(400, 21220, "Call is not in-progress. Cannot redirect.")), Accepted, "already ended", false},
		{"503 may be resent", reply(503, ""), CarrierFault, "http 503", true},
		{"404 unknown call", reply(404, twilioErr(404, 20404, "not found")), CarrierFault, "twilio 20404 not found", false},
		{"hang may be resent", hang, CarrierFault, "timeout", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t, tt.answer)
			r := newTestTwilio(t, f.URL).Hangup(context.Background(), "CA1")
			if r.Outcome != tt.wantOutcome || r.Reason != tt.wantReason || r.Retryable != tt.wantRetryable {
				t.Errorf("got %v retryable=%v", r, r.Retryable)
			}
			got := f.request(t)
			form, _ := url.ParseQuery(string(got.body))
			if got.path != "/2010-04-01/Accounts/"+twilioSID+"/Calls/CA1.json" || got.authorization != twilioBasic ||
				fmt.Sprint(form) != fmt.Sprint(url.Values{"Status": {"completed"}}) {
				t.Errorf("sent %s %v auth %q", got.path, form, got.authorization)
			}
		})
	}
	var hits atomic.Int32
	f := newFakeCarrier(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	for _, id := range []string{"", "CA 1", strings.Repeat("x", 200)} {
		if r := newTestTwilio(t, f.URL).Hangup(context.Background(), id); r.Outcome != Final {
			t.Errorf("Hangup(%q) = %v", id, r)
		}
	}
	if hits.Load() != 0 {
		t.Error("an invalid hangup reached the carrier")
	}
	// A call sid is escaped into the path, never interpreted.
	g := newFakeCarrier(t, reply(200, `{}`))
	newTestTwilio(t, g.URL).Hangup(context.Background(), "CA1/../../x")
	if p := g.request(t).path; p != "/2010-04-01/Accounts/"+twilioSID+"/Calls/CA1%2F..%2F..%2Fx.json" {
		t.Errorf("path %q", p)
	}
}

func TestTwilioRedirect(t *testing.T) {
	const doc = `<Response><Connect><Stream url="wss://b.example/m"/></Connect><Hangup/></Response>`
	tests := []struct {
		name          string
		answer        http.HandlerFunc
		wantOutcome   Outcome
		wantReason    string
		wantGone      bool
		wantRetryable bool
	}{
		{"200", reply(200, `{"sid":"CA1","status":"in-progress"}`), Accepted, "accepted", false, false},
		// The answer Twilio documents for a call that is no longer in progress
		// (https://www.twilio.com/docs/api/errors/21220).
		{"not in progress", reply(400, twilioErr(400, 21220, "Call is not in-progress. Cannot redirect.")),
			Final, "twilio 21220 call not in progress", true, false},
		{"503 may be resent", reply(503, ""), CarrierFault, "http 503", false, true},
		{"timeout may be resent", hang, CarrierFault, "timeout", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t, tt.answer)
			r := newTestTwilio(t, f.URL).Redirect(context.Background(), "CA1", doc)
			if r.Outcome != tt.wantOutcome || r.Reason != tt.wantReason || r.Gone() != tt.wantGone || r.Retryable != tt.wantRetryable {
				t.Errorf("got %v gone=%v retryable=%v", r, r.Gone(), r.Retryable)
			}
			got := f.request(t)
			form, _ := url.ParseQuery(string(got.body))
			if got.method != http.MethodPost || got.path != "/2010-04-01/Accounts/"+twilioSID+"/Calls/CA1.json" ||
				got.authorization != twilioBasic || fmt.Sprint(form) != fmt.Sprint(url.Values{"Twiml": {doc}}) {
				t.Errorf("sent %s %s %v auth %q", got.method, got.path, form, got.authorization)
			}
			assertClean(t, r, twilioBasic)
		})
	}
	var hits atomic.Int32
	f := newFakeCarrier(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	c := newTestTwilio(t, f.URL)
	for _, r := range []Result{c.Redirect(context.Background(), "CA 1", doc), c.Redirect(context.Background(), "CA1", "")} {
		if r.Outcome != Final || r.Gone() {
			t.Errorf("bad request: %v", r)
		}
	}
	if hits.Load() != 0 {
		t.Error("an invalid redirect reached the carrier")
	}
}
