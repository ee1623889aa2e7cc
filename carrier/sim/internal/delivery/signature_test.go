package delivery_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
)

// The vectors of carrier-protocols.md §2.5.
func TestTwilioSignatureReferenceVectors(t *testing.T) {
	mycompany := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	example := url.Values{
		"Digits": {"1234"}, "To": {"+18005551212"}, "From": {"+14158675310"},
		"Caller": {"+14158675310"}, "CallSid": {"CA1234567890ABCDE"},
	}
	twilioGo := url.Values{
		"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"},
		"ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
	const bodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	tests := []struct {
		name   string
		url    string
		params url.Values
		want   string
	}{
		{"A mycompany", "https://mycompany.com/myapp.php?foo=1&bar=2", mycompany, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"A mycompany with :443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", mycompany, "EpDEmp1PyjDYp77YxYU3GILBWzE="},
		{"B example.com", "https://example.com/myapp.php?foo=1&bar=2", example, "L/OH5YylLD5NRKLltdqwSvS0BnU="},
		{"C twilio-go", "https://mycompany.com/myapp.php?foo=1&bar=2", twilioGo, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"C http", "http://mycompany.com/myapp.php?foo=1&bar=2", twilioGo, "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"C :443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", twilioGo, "nlYDL9HO41xd+GBsch67HROPYMY="},
		{"C :80", "http://mycompany.com:80/myapp.php?foo=1&bar=2", twilioGo, "oCUk9kaPGFSgDUJ9NnSKaV+LTwE="},
		{"C :1234", "https://mycompany.com:1234/myapp.php?foo=1&bar=2", twilioGo, "AU2e5pW17Utr6M3MPhtn/Bruk84="},
		{"C JSON body hash", "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=" + bodyHash, nil, "a9nBmqA0ju/hNViExpshrM61xv4="},
		{"C JSON body hash only", "https://mycompany.com/myapp.php?bodySHA256=" + bodyHash, nil, "y77kIzt2vzLz71DgmJGsen2scGs="},
		{"C form body", "https://mycompany.com/myapp.php?foo=1&bar=2", url.Values{"property": {"value"}, "boolean": {"true"}}, "NBdBDr/T/lgjI+tlgpXjKZQZs/k="},
		{"fragment is not signed", "https://example.com/myapp.php?foo=1&bar=2#ct=1000&rc=2", example, "L/OH5YylLD5NRKLltdqwSvS0BnU="},
	}
	for _, tt := range tests {
		if got := delivery.TwilioSignature("12345", tt.url, tt.params); got != tt.want {
			t.Errorf("%s: TwilioSignature = %q, want %q", tt.name, got, tt.want)
		}
	}
	// "ReasonConferenceEnded is sorted before Reason" gives this wrong signature.
	if got := delivery.TwilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", twilioGo); got == "95+Bu0JVPi0r/SsESZCVf0dWAjw=" {
		t.Error("parameters sorted the wrong way")
	}
}

func TestTwilioSignatureSortsRepeatedKeysByValue(t *testing.T) {
	// Sorted by key then value, every pair appended: the order the values came in does
	// not matter.
	a := delivery.TwilioSignature("12345", "https://example.com/x", url.Values{"Digits": {"5678", "1234"}, "Sid": {"CA1"}})
	b := delivery.TwilioSignature("12345", "https://example.com/x", url.Values{"Digits": {"1234", "5678"}, "Sid": {"CA1"}})
	c := delivery.TwilioSignature("12345", "https://example.com/xDigits1234Digits5678SidCA1", nil)
	if a != b || a != c {
		t.Errorf("repeated keys: %q, %q, %q should be equal", a, b, c)
	}
}

// The request a Twilio status callback or voice webhook makes: a POST signs the form, a GET
// signs the URL its parameters were added to, and neither sends nor signs the fragment.
func TestTwilioRequest(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	method, target, body, h := delivery.TwilioRequest("12345", http.MethodPost,
		"https://mycompany.com/myapp.php?foo=1&bar=2#rc=2", params, "token-1")
	if method != http.MethodPost || target != "https://mycompany.com/myapp.php?foo=1&bar=2" {
		t.Errorf("POST to %s %s", method, target)
	}
	if got, _ := url.ParseQuery(string(body)); !reflect.DeepEqual(got, params) {
		t.Errorf("form %v, want %v", got, params)
	}
	// Twilio's own vector for this URL and these parameters (carrier-protocols.md §2.5).
	for k, want := range map[string]string{
		"X-Twilio-Signature":         "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
		"Content-Type":               "application/x-www-form-urlencoded",
		"I-Twilio-Idempotency-Token": "token-1",
		"User-Agent":                 "TwilioProxy/1.1",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("POST %s = %q, want %q", k, got, want)
		}
	}

	_, target, body, h = delivery.TwilioRequest("12345", http.MethodGet,
		"https://mycompany.com/myapp.php?foo=1#rc=2", url.Values{"To": {"+1"}}, "token-2")
	if want := "https://mycompany.com/myapp.php?foo=1&To=%2B1"; target != want || len(body) != 0 {
		t.Errorf("GET %s with %d bytes of body, want %s and none", target, len(body), want)
	}
	if got, want := h.Get("X-Twilio-Signature"), delivery.TwilioSignature("12345", target, nil); got != want {
		t.Errorf("GET signature %q, want %q (the URL with its query, no parameters)", got, want)
	}
}

// A Telnyx webhook's signature verifies, with the standard library's Ed25519, over
// "timestamp|body" with the timestamp it carries, and not over any other body.
func TestTelnyxHeadersVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"data":{"event_type":"call.answered"}}`)
	at := time.Unix(1_700_000_000, 0)
	h := delivery.TelnyxHeaders(priv, at, body)
	if ts := h.Get("Telnyx-Timestamp"); ts != "1700000000" {
		t.Errorf("timestamp %q", ts)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	sig, err := base64.StdEncoding.DecodeString(h.Get("Telnyx-Signature-Ed25519"))
	if err != nil {
		t.Fatalf("signature is not base64: %v", err)
	}
	if !ed25519.Verify(pub, []byte("1700000000|"+string(body)), sig) {
		t.Error("signature does not verify over timestamp|body")
	}
	if ed25519.Verify(pub, []byte("1700000000|"+string(body)+" "), sig) {
		t.Error("signature verifies over another body")
	}
}
