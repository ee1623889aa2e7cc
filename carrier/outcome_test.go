package carrier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

func TestOutcomeNamesRoundTrip(t *testing.T) {
	for _, o := range []Outcome{Accepted, CarrierFault, Final} {
		got, err := ParseOutcome(o.String())
		if err != nil || got != o {
			t.Errorf("ParseOutcome(%q) = %v, %v", o.String(), got, err)
		}
		b, _ := o.MarshalText()
		var back Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Errorf("text round trip of %v: %v, %v", o, back, err)
		}
	}
	if _, err := ParseOutcome("unknown"); err == nil {
		t.Error(`ParseOutcome("unknown") succeeded`)
	}
	if OutcomeUnknown.String() != "unknown" || Outcome(9).String() != "unknown" {
		t.Error("out-of-range outcomes must print as unknown")
	}
}

type classifyCase struct {
	name          string
	status        int
	body          string
	wantOutcome   Outcome
	wantReason    string
	wantCode      int
	wantRetryable bool
}

func runClassify(t *testing.T, classify func(int, []byte) Result, cases []classifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := classify(tc.status, []byte(tc.body))
			if r.Outcome != tc.wantOutcome {
				t.Errorf("outcome = %v, want %v (%v)", r.Outcome, tc.wantOutcome, r)
			}
			if r.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", r.Reason, tc.wantReason)
			}
			if r.Code != tc.wantCode {
				t.Errorf("code = %d, want %d", r.Code, tc.wantCode)
			}
			if r.Retryable != tc.wantRetryable {
				t.Errorf("retryable = %v, want %v", r.Retryable, tc.wantRetryable)
			}
			if r.HTTPStatus != tc.status {
				t.Errorf("http status = %d, want %d", r.HTTPStatus, tc.status)
			}
		})
	}
}

func twilioErr(status, code int, msg string) string {
	return fmt.Sprintf(`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, msg, code, status)
}

func TestClassifyTwilio(t *testing.T) {
	runClassify(t, ClassifyTwilio, []classifyCase{
		{"201 created", 201, `{"sid":"CA1","status":"queued"}`, Accepted, "accepted", 0, false},
		{"200 ok", 200, `{}`, Accepted, "accepted", 0, false},
		{"302 redirect", 302, ``, CarrierFault, "unexpected redirect", 0, false},
		{"304 not modified", 304, ``, CarrierFault, "unexpected redirect", 0, false},
		{"400 21211 invalid To", 400, twilioErr(400, 21211, "Invalid 'To' Phone Number"), Final, "twilio 21211 invalid number", 21211, false},
		{"400 21214 unreachable", 400, twilioErr(400, 21214, "'To' phone number cannot be reached"), Final, "twilio 21214 number unreachable", 21214, false},
		{"400 21215 geo permission", 400, twilioErr(400, 21215, "Account not authorized to call"), Final, "twilio 21215 geo permission", 21215, false},
		{"403 21215 geo permission", 403, twilioErr(403, 21215, "Account not authorized to call"), Final, "twilio 21215 geo permission", 21215, false},
		// 21216 may be our account's missing Primary Customer Profile: another carrier may
		// take the call (twilio.com/docs/errors/21216).
		{"400 21216 blocked by twilio", 400, twilioErr(400, 21216, "Call blocked by Twilio"), CarrierFault, "twilio 21216 blocked by twilio", 21216, false},
		{"400 21208 invalid timeout", 400, twilioErr(400, 21208, "Invalid Timeout"), CarrierFault, "twilio 21208", 21208, false},
		{"400 21217 not valid", 400, twilioErr(400, 21217, "Phone number does not appear to be valid"), Final, "twilio 21217 invalid number", 21217, false},
		{"400 13223 format", 400, twilioErr(400, 13223, "Dial: Invalid phone number format"), Final, "twilio 13223 invalid number format", 13223, false},
		{"400 13224 invalid", 400, twilioErr(400, 13224, "Dial: Invalid phone number"), Final, "twilio 13224 invalid number", 13224, false},
		{"400 13225 forbidden", 400, twilioErr(400, 13225, "Dial: Forbidden phone number"), Final, "twilio 13225 number restricted", 13225, false},
		{"400 13227 international", 400, twilioErr(400, 13227, "No International Authorization"), Final, "twilio 13227 geo permission", 13227, false},
		{"400 21212 invalid From is ours", 400, twilioErr(400, 21212, "Invalid 'From' Phone Number"), CarrierFault, "twilio 21212 invalid from", 21212, false},
		{"400 21210 From not verified", 400, twilioErr(400, 21210, "'From' phone number not verified"), CarrierFault, "twilio 21210 from not verified", 21210, false},
		{"400 21219 trial limit", 400, twilioErr(400, 21219, "'To' phone number not verified"), CarrierFault, "twilio 21219 to not verified", 21219, false},
		{"400 unknown code", 400, twilioErr(400, 21999, "Something new"), CarrierFault, "twilio 21999", 21999, false},
		{"400 no body", 400, ``, CarrierFault, "http 400", 0, false},
		{"400 garbage JSON", 400, `{"code":`, CarrierFault, "http 400", 0, false},
		{"400 code as string", 400, `{"code":"21211","message":"x"}`, Final, "twilio 21211 invalid number", 21211, false},
		{"400 code null", 400, `{"code":null,"message":"x"}`, CarrierFault, "http 400", 0, false},
		{"401 bad credentials", 401, twilioErr(401, 20003, "Authenticate"), CarrierFault, "twilio 20003 credentials rejected", 20003, false},
		{"401 with a number code still ours", 401, twilioErr(401, 21211, "odd"), CarrierFault, "twilio 21211 invalid number", 21211, false},
		{"403 forbidden", 403, ``, CarrierFault, "http 403", 0, false},
		{"404 account path", 404, `{"status":404,"message":"The requested resource was not found"}`, CarrierFault, "http 404", 0, false},
		{"404 20404", 404, twilioErr(404, 20404, "Not found"), CarrierFault, "twilio 20404 not found", 20404, false},
		{"405 wrong url", 405, ``, CarrierFault, "http 405", 0, false},
		{"408 timeout", 408, ``, CarrierFault, "http 408", 0, true},
		{"429 20429", 429, twilioErr(429, 20429, "Too Many Requests"), CarrierFault, "twilio 20429 too many requests", 20429, true},
		{"429 with a number code is not a verdict", 429, twilioErr(429, 21211, "odd"), CarrierFault, "twilio 21211 invalid number", 21211, true},
		{"500 html", 500, `<html><body>Internal Server Error</body></html>`, CarrierFault, "http 500", 0, false},
		{"502 bad gateway", 502, ``, CarrierFault, "http 502", 0, false},
		{"503 try later", 503, twilioErr(503, 20503, "Service unavailable"), CarrierFault, "twilio 20503", 20503, false},
		{"500 with a number code is not a verdict", 500, twilioErr(500, 21211, "odd"), CarrierFault, "twilio 21211 invalid number", 21211, false},
	})
}

func telnyxErr(code, title, pointer string) string {
	src := ""
	if pointer != "" {
		src = fmt.Sprintf(`,"source":{"pointer":%q}`, pointer)
	}
	return fmt.Sprintf(`{"errors":[{"code":%q,"title":%q,"detail":"d"%s}]}`, code, title, src)
}

func TestClassifyTelnyx(t *testing.T) {
	runClassify(t, ClassifyTelnyx, []classifyCase{
		{"200 dial", 200, `{"data":{"call_control_id":"v3:x"}}`, Accepted, "accepted", 0, false},
		{"301 redirect", 301, ``, CarrierFault, "unexpected redirect", 0, false},
		{"422 10002 invalid number", 422, telnyxErr("10002", "Invalid phone number", ""), Final, "telnyx 10002 invalid number", 10002, false},
		{"422 10001 inactive", 422, telnyxErr("10001", "Inactive phone number", ""), Final, "telnyx 10001 inactive number", 10001, false},
		{"422 10016 on to", 422, telnyxErr("10016", "Phone number must be in +E.164 format", "/to"), Final, "telnyx 10016 number not e164", 10016, false},
		{"422 10016 on from is ours", 422, telnyxErr("10016", "Phone number must be in +E.164 format", "/from"), CarrierFault, "telnyx 10016 invalid from", 10016, false},
		{"422 unknown code on to", 422, telnyxErr("10015", "Bad Request", "/to"), Final, "telnyx 10015 bad request", 10015, false},
		{"422 no code on to", 422, `{"errors":[{"title":"Invalid to","source":{"pointer":"/to"}}]}`, Final, "telnyx invalid number", 0, false},
		{"422 second error is the number", 422, `{"errors":[{"code":"10015","title":"x","source":{"pointer":"/webhook_url"}},{"code":"10002","title":"Invalid phone number"}]}`, Final, "telnyx 10002 invalid number", 10002, false},
		{"422 connection id", 422, telnyxErr("10015", "Bad Request", "/connection_id"), CarrierFault, "telnyx 10015 bad request", 10015, false},
		{"422 call already ended", 422, telnyxErr("90018", "Call has already ended", ""), Final, "telnyx 90018 call already ended", 90018, false},
		{"422 no body", 422, ``, CarrierFault, "http 422", 0, false},
		{"400 numeric code", 400, `{"errors":[{"code":10002,"title":"Invalid phone number"}]}`, Final, "telnyx 10002 invalid number", 10002, false},
		{"400 empty errors", 400, `{"errors":[]}`, CarrierFault, "http 400", 0, false},
		{"401 auth", 401, telnyxErr("10009", "Authentication failed", ""), CarrierFault, "telnyx 10009 credentials rejected", 10009, false},
		{"403 authz", 403, telnyxErr("10010", "Authorization failed", ""), CarrierFault, "telnyx 10010 not authorized", 10010, false},
		{"404 not found", 404, telnyxErr("10005", "Resource not found", ""), CarrierFault, "telnyx 10005 not found", 10005, false},
		{"408", 408, ``, CarrierFault, "http 408", 0, true},
		{"429", 429, telnyxErr("10011", "Too many requests", ""), CarrierFault, "telnyx 10011 too many requests", 10011, true},
		{"500 html", 500, `<html>oops</html>`, CarrierFault, "http 500", 0, true},
		{"503", 503, ``, CarrierFault, "http 503", 0, true},
		{"500 garbage JSON", 500, `{"errors":[{`, CarrierFault, "http 500", 0, true},
		{"502 code D-style", 502, `{"errors":[{"code":"D12","title":"x"}]}`, CarrierFault, "http 502", 0, true},
	})
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyError(t *testing.T) {
	post := func(err error) error { return &url.Error{Op: "Post", URL: "https://api.example/x", Err: err} }
	tests := []struct {
		name          string
		err           error
		wantOutcome   Outcome
		wantReason    string
		wantRetryable bool
	}{
		{"refused", post(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}), CarrierFault, "dial failed", true},
		{"dial timeout", post(&net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}), CarrierFault, "dial timeout", true},
		{"dns", post(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}}), CarrierFault, "dns failed", true},
		{"tls unknown authority", post(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), CarrierFault, "tls failed", true},
		{"tls record header", post(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), CarrierFault, "tls failed", true},
		{"tls alert", post(tls.AlertError(40)), CarrierFault, "tls failed", true},
		{"hostname", post(x509.HostnameError{Host: "x"}), CarrierFault, "tls failed", true},
		{"deadline", post(context.DeadlineExceeded), CarrierFault, "timeout", false},
		{"client timeout", post(timeoutErr{}), CarrierFault, "timeout", false},
		{"reset", post(&net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}), CarrierFault, "connection reset", false},
		{"eof", post(io.EOF), CarrierFault, "connection closed", false},
		{"unexpected eof", post(io.ErrUnexpectedEOF), CarrierFault, "connection closed", false},
		{"caller canceled", post(context.Canceled), Final, "canceled", false},
		{"canceled while dialing", post(&net.OpError{Op: "dial", Err: fmt.Errorf("op: %w", context.Canceled)}), Final, "canceled", false},
		{"other", post(errors.New("net/http: something new")), CarrierFault, "transport error", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ClassifyError(tc.err)
			if r.Outcome != tc.wantOutcome || r.Reason != tc.wantReason || r.Retryable != tc.wantRetryable {
				t.Errorf("got %v %q retryable=%v; want %v %q retryable=%v",
					r.Outcome, r.Reason, r.Retryable, tc.wantOutcome, tc.wantReason, tc.wantRetryable)
			}
			if r.HTTPStatus != 0 || r.Detail == "" {
				t.Errorf("status %d detail %q", r.HTTPStatus, r.Detail)
			}
		})
	}
	if r := ClassifyError(nil); r.Outcome != OutcomeUnknown {
		t.Errorf("ClassifyError(nil) = %v", r)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := clip(long)
	if !utf8.ValidString(got) || len(got) > 204 {
		t.Errorf("clip kept %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
	if got := clip("a\nb\x00c\td"); got != "a b c d" {
		t.Errorf("clip control chars: %q", got)
	}
	if got := clip("bad \xff byte"); !utf8.ValidString(got) {
		t.Errorf("clip left invalid UTF-8: %q", got)
	}
}

func fuzzClassify(f *testing.F, classify func(int, []byte) Result) {
	for _, s := range []int{200, 302, 400, 401, 403, 408, 422, 429, 500, 503, 99, 700} {
		f.Add(s, []byte(twilioErr(s, 21211, "x")))
		f.Add(s, []byte(telnyxErr("10002", "x", "/to")))
	}
	f.Add(400, []byte(`{"errors":[{"code":"1e400"}]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r := classify(status, body)
		switch {
		case status >= 200 && status < 300:
			if r.Outcome != Accepted {
				t.Fatalf("2xx gave %v", r)
			}
		case r.Outcome == Final:
			if !numberVerdict(status) {
				t.Fatalf("Final from status %d: %v", status, r)
			}
		case r.Outcome != CarrierFault:
			t.Fatalf("status %d gave %v", status, r)
		}
		if r.Reason == "" || len(r.Detail) > 210 || !utf8.ValidString(r.Detail) {
			t.Fatalf("bad reason or detail: %+v", r)
		}
	})
}

func FuzzClassifyTwilio(f *testing.F) { fuzzClassify(f, ClassifyTwilio) }
func FuzzClassifyTelnyx(f *testing.F) { fuzzClassify(f, ClassifyTelnyx) }
