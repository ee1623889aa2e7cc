package webhooks

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// referenceSignTwilio is Twilio's documented algorithm written the plain way, independently of
// the verifier under test: the full URL, then every POST parameter sorted by name (and by value
// within a name) as name followed by value, HMAC-SHA1 with the auth token, base64. It knows none
// of the port, fragment and duplicate tolerances of VerifyTwilio, and it allocates freely: it is
// the oracle of FuzzVerifyTwilioAgainstReference and the baseline of the verify benchmarks.
func referenceSignTwilio(authToken, fullURL string, body []byte) (string, bool) {
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return "", false
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	var s strings.Builder
	s.WriteString(fullURL)
	for _, name := range names {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, v := range values {
			s.WriteString(name)
			s.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), true
}

// The reference reproduces Twilio's published vectors, so it can judge the real verifier.
func TestReferenceSignTwilioVectors(t *testing.T) {
	for _, v := range []struct {
		url  string
		body []byte
		want string
	}{
		{vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{vecHTTPURL, vecCBody, "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"https://example.com/myapp.php?foo=1&bar=2", vecBBody, "L/OH5YylLD5NRKLltdqwSvS0BnU="},
	} {
		got, ok := referenceSignTwilio(vecToken, v.url, v.body)
		if !ok || got != v.want {
			t.Errorf("referenceSignTwilio(%q) = %q, %v; want %q", v.url, got, ok, v.want)
		}
	}
}

// FuzzVerifyTwilioAgainstReference: whatever the plain reference signs, VerifyTwilio accepts,
// and it refuses that signature for another token or another URL path. Inputs the reference
// does not model (fragments, userinfo, bodySHA256, unreadable forms, repeated identical pairs,
// whose treatment Twilio leaves open) are left to FuzzVerifyTwilio.
func FuzzVerifyTwilioAgainstReference(f *testing.F) {
	f.Add(vecToken, vecURL, vecCBody)
	f.Add(vecToken, vecHTTPURL, vecCBody)
	f.Add(vecToken, "https://example.com/myapp.php?foo=1&bar=2", vecBBody)
	f.Add("0123456789abcdef0123456789abcdef", benchURL, realisticStatusCallback())
	f.Add("t", "http://h/p", []byte("a=1&a=2&b=%20x+y"))
	f.Fuzz(func(t *testing.T, token, rawURL string, body []byte) {
		if token == "" || strings.ContainsAny(rawURL, "#@") || strings.Contains(rawURL, "bodySHA256") {
			return
		}
		params, err := url.ParseQuery(string(body))
		if err != nil || hasRepeatedPair(params) {
			return
		}
		sig, ok := referenceSignTwilio(token, rawURL, body)
		if !ok {
			return
		}
		if !VerifyTwilio(token, rawURL, body, sig) {
			t.Fatalf("VerifyTwilio(%q, %q, %q) refused the reference signature %q", token, rawURL, body, sig)
		}
		if VerifyTwilio(token+"x", rawURL, body, sig) {
			t.Fatal("another token verified")
		}
		if VerifyTwilio(token, rawURL+"x", body, sig) {
			t.Fatal("another URL verified")
		}
	})
}

func hasRepeatedPair(params url.Values) bool {
	for _, values := range params {
		sorted := slices.Clone(values)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(values) {
			return true
		}
	}
	return false
}

// BenchmarkVerifyTwilioReference is the plain way's cost, the baseline BenchmarkVerifyTwilio is
// judged against.
func BenchmarkVerifyTwilioReference(b *testing.B) {
	body := realisticStatusCallback()
	const token = "0123456789abcdef0123456789abcdef"
	want, _ := referenceSignTwilio(token, benchURL, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		got, _ := referenceSignTwilio(token, benchURL, body)
		if !hmac.Equal([]byte(got), []byte(want)) {
			b.Fatal("signature did not verify")
		}
	}
}
