package delivery_test

import (
	"net/url"
	"testing"

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
