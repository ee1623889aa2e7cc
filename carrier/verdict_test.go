package carrier

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestCreateCallVerdicts classifies real answers (and non-answers) to create-call requests,
// through the clients, as final, not created, or maybe created.
func TestCreateCallVerdicts(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // connection refused: nothing was sent
	answer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	hang := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // once the body is read, the server notices the client leave
		<-r.Context().Done()
	}
	reset := func(w http.ResponseWriter, r *http.Request) {
		// The request arrived in full; the connection breaks before any answer.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}
	tests := []struct {
		name      string
		kind      Kind
		handler   http.HandlerFunc // nil: the closed server
		want      Verdict
		retryable bool
	}{
		{"twilio created", Twilio, answer(201, `{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued"}`), Created, false},
		{"twilio connection refused", Twilio, nil, NotCreated, true},
		{"twilio 401 credentials", Twilio, answer(401, `{"code":20003,"message":"Authenticate","status":401}`), NotCreated, false},
		{"twilio 429 before anything", Twilio, answer(429, `{"code":20429,"message":"Too Many Requests","status":429}`), NotCreated, true},
		{"twilio 400 invalid number", Twilio, answer(400, `{"code":21211,"message":"Invalid 'To' Phone Number","status":400}`), Refused, false},
		{"twilio 500", Twilio, answer(500, `{"code":20500,"message":"Internal Server Error","status":500}`), MaybeCreated, false},
		{"twilio 503", Twilio, answer(503, `{"code":20503,"message":"Service Unavailable","status":503}`), MaybeCreated, false},
		{"twilio timeout after the request was sent", Twilio, hang, MaybeCreated, false},
		{"twilio connection reset after the request was sent", Twilio, reset, MaybeCreated, false},
		{"twilio 201 without a sid", Twilio, answer(201, `<html>welcome</html>`), MaybeCreated, false},
		{"telnyx created", Telnyx, answer(200, telnyxDialed), Created, false},
		{"telnyx connection refused", Telnyx, nil, NotCreated, true},
		{"telnyx 401", Telnyx, answer(401, `{"errors":[{"code":"10009","title":"Authentication failed"}]}`), NotCreated, false},
		{"telnyx 422 invalid number", Telnyx, answer(422, `{"errors":[{"code":"10002","title":"Invalid phone number","source":{"pointer":"/to"}}]}`), Refused, false},
		{"telnyx 503", Telnyx, answer(503, `{"errors":[{"code":"10007","title":"Unexpected error"}]}`), MaybeCreated, true},
		{"telnyx timeout after the request was sent", Telnyx, hang, MaybeCreated, true},
		{"telnyx connection reset after the request was sent", Telnyx, reset, MaybeCreated, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := closed.URL
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				defer srv.Close()
				url = srv.URL
			}
			var res Result
			if tt.kind == Twilio {
				cfg := twilioConfig()
				cfg.APIURL, cfg.RequestTimeout = url, Duration(300*time.Millisecond)
				if err := cfg.Normalize(); err != nil {
					t.Fatal(err)
				}
				_, res = NewTwilioClient(cfg, NewHTTPClient()).Place(context.Background(), PlaceRequest{CallID: "CL1", Attempt: 1,
					To: "+15551234567", VoiceURL: "https://sb.example/v", StatusURL: "https://sb.example/s"})
			} else {
				c := newTestTelnyx(t, url)
				_, res = c.Place(context.Background(), telnyxRequest())
			}
			if got := res.Verdict(); got != tt.want || res.Retryable != tt.retryable {
				t.Errorf("%v, retryable %v (%s); want %v, retryable %v", got, res.Retryable, res, tt.want, tt.retryable)
			}
		})
	}
	for _, c := range []struct {
		err  error
		want Verdict
	}{
		{&net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}, NotCreated},
		{context.Canceled, Refused},
		{errors.New("something else"), NotCreated},
		{&sentError{errors.New("something else")}, MaybeCreated},
	} {
		if got := ClassifyError(c.err).Verdict(); got != c.want {
			t.Errorf("ClassifyError(%v): %v, want %v", c.err, got, c.want)
		}
	}
}
