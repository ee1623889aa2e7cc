package webhooks

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

// Vectors from carrier-protocols.md §2.5 and twilio-python's test_request_validator.py.
const (
	vecToken    = "12345"
	vecURL      = "https://mycompany.com/myapp.php?foo=1&bar=2"
	vecHTTPURL  = "http://mycompany.com/myapp.php?foo=1&bar=2"
	vecJSONBody = `{"property": "value", "boolean": true}`
	vecBodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
)

func form(pairs ...string) []byte {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return []byte(v.Encode())
}

var (
	// §2.5 A, the older "mycompany" docs example.
	vecABody = form("CallSid", "CA1234567890ABCDE", "Caller", "+12349013030", "Digits", "1234",
		"From", "+12349013030", "To", "+18005551212")
	// §2.5 B, the current docs example, deliberately not in key order on the wire.
	vecBBody = []byte("Digits=1234&To=%2B18005551212&From=%2B14158675310&Caller=%2B14158675310&CallSid=CA1234567890ABCDE")
	// §2.5 C, twilio-go's request_validator_test.go.
	vecCBody = form("Digits", "1234", "CallSid", "CA1234567890ABCDE", "To", "+18005551212",
		"Caller", "+14158675309", "From", "+14158675309", "ReasonConferenceEnded", "test", "Reason", "Participant")
	// twilio-python's params.
	vecPyBody = form("CallSid", "CA1234567890ABCDE", "Digits", "1234", "From", "+14158675309",
		"To", "+18005551212", "Caller", "+14158675309")
)

func TestVerifyTwilio(t *testing.T) {
	withPort := func(u, port string) string { return strings.Replace(u, ".com", ".com"+port, 1) }
	tests := []struct {
		name  string
		token string
		url   string
		body  []byte
		sig   string
		want  bool
	}{
		// §2.5 A
		{"A docs example", vecToken, "https://mycompany.com/myapp.php?foo=1&bar=2", vecABody, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", true},
		{"A :443 signature, port-less URL", vecToken, vecURL, vecABody, "EpDEmp1PyjDYp77YxYU3GILBWzE=", true},
		{"A port-less signature, :443 URL", vecToken, withPort(vecURL, ":443"), vecABody, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", true},
		{"A :443 signature, :443 URL", vecToken, withPort(vecURL, ":443"), vecABody, "EpDEmp1PyjDYp77YxYU3GILBWzE=", true},
		// §2.5 B
		{"B docs example", vecToken, "https://example.com/myapp.php?foo=1&bar=2", vecBBody, "L/OH5YylLD5NRKLltdqwSvS0BnU=", true},
		// §2.5 C
		{"C twilio-go", vecToken, vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"C :1234 validates port-less signature", vecToken, withPort(vecURL, ":1234"), vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"C http", vecToken, vecHTTPURL, vecCBody, "n2xBNyzSW7rfYStDtOFiFMv7qNo=", true},
		{"C http :1234", vecToken, withPort(vecHTTPURL, ":1234"), vecCBody, "n2xBNyzSW7rfYStDtOFiFMv7qNo=", true},
		{"C Reason sorted after ReasonConferenceEnded", vecToken, vecURL, vecCBody, "95+Bu0JVPi0r/SsESZCVf0dWAjw=", false},
		{"C JSON with bodySHA256", vecToken, vecURL + "&bodySHA256=" + vecBodyHash, []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", true},
		{"C JSON with only bodySHA256", vecToken, "https://mycompany.com/myapp.php?bodySHA256=" + vecBodyHash, []byte(vecJSONBody), "y77kIzt2vzLz71DgmJGsen2scGs=", true},
		{"C form body", vecToken, vecURL, []byte("property=value&boolean=true"), "NBdBDr/T/lgjI+tlgpXjKZQZs/k=", true},
		// §2.5 locally computed extras for C's params.
		{"C :443 signature, port-less URL", vecToken, vecURL, vecCBody, "nlYDL9HO41xd+GBsch67HROPYMY=", true},
		{"C :443 signature, :443 URL", vecToken, withPort(vecURL, ":443"), vecCBody, "nlYDL9HO41xd+GBsch67HROPYMY=", true},
		{"C port-less signature, :443 URL", vecToken, withPort(vecURL, ":443"), vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"C :80 signature, port-less http URL", vecToken, vecHTTPURL, vecCBody, "oCUk9kaPGFSgDUJ9NnSKaV+LTwE=", true},
		{"C :80 signature, :80 http URL", vecToken, withPort(vecHTTPURL, ":80"), vecCBody, "oCUk9kaPGFSgDUJ9NnSKaV+LTwE=", true},
		{"C port-less signature, :80 http URL", vecToken, withPort(vecHTTPURL, ":80"), vecCBody, "n2xBNyzSW7rfYStDtOFiFMv7qNo=", true},
		{"C :1234 signature, :1234 URL", vecToken, withPort(vecURL, ":1234"), vecCBody, "AU2e5pW17Utr6M3MPhtn/Bruk84=", true},
		{"C :1234 signature, port-less URL", vecToken, vecURL, vecCBody, "AU2e5pW17Utr6M3MPhtn/Bruk84=", false},
		{"C :443 signature, :1234 URL", vecToken, withPort(vecURL, ":1234"), vecCBody, "nlYDL9HO41xd+GBsch67HROPYMY=", false},
		// twilio-python.
		{"python", vecToken, vecURL, vecPyBody, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true},
		{"python http :1234", vecToken, withPort(vecHTTPURL, ":1234"), vecPyBody, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", true},
		{"python adds :443", vecToken, vecURL, vecPyBody, "kvajT1Ptam85bY51eRf/AJRuM3w=", true},
		{"python adds :80", vecToken, vecHTTPURL, vecPyBody, "0ZXoZLH/DfblKGATFgpif+LLRf4=", true},
		{"python JSON body", vecToken, vecURL + "&bodySHA256=" + vecBodyHash, []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", true},
		// Repeated keys: every value, sorted (twilio-python), not twilio-go's first value.
		{"repeated key", vecToken, vecURL, []byte("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"), "IK+Dwps556ElfBT0I3Rgjkr1wJU=", true},
		{"repeated key, other order", vecToken, vecURL, []byte("Digits=1234&Sid=CA123&Digits=5678&SidAccount=AC123"), "IK+Dwps556ElfBT0I3Rgjkr1wJU=", true},
		{"repeated key, first value only", vecToken, vecURL, []byte("Sid=CA123&SidAccount=AC123&Digits=5678"), "IK+Dwps556ElfBT0I3Rgjkr1wJU=", false},
		// Connection-override fragments are not signed.
		{"fragment", vecToken, vecURL + "#ct=1000&rt=1000", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"fragment with port", vecToken, withPort(vecURL, ":443") + "#rc=2&ct=1000", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"fragment, JSON", vecToken, vecURL + "&bodySHA256=" + vecBodyHash + "#rp=ct,rt", []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", true},
		// Userinfo is not signed.
		{"userinfo", vecToken, "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"userinfo and port", vecToken, "https://user:pa:ss@mycompany.com:443/myapp.php?foo=1&bar=2", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		// Tampering.
		{"tampered body value", vecToken, vecURL, []byte(strings.Replace(string(vecCBody), "Digits=1234", "Digits=1235", 1)), "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"extra body pair", vecToken, vecURL, append(append([]byte{}, vecCBody...), "&CallStatus=completed"...), "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"tampered URL path", vecToken, "https://mycompany.com/myapp2.php?foo=1&bar=2", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"tampered URL query", vecToken, "https://mycompany.com/myapp.php?foo=1&bar=3", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"tampered URL scheme", vecToken, vecHTTPURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"re-encoded query", vecToken, "https://mycompany.com/myapp.php?foo=%31&bar=2", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"trailing slash", vecToken, "https://mycompany.com/myapp.php/?foo=1&bar=2", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"wrong token", "12346", vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"token case matters", "ABCDE", vecURL, vecCBody, SignTwilio("abcde", vecURL, vecCBody), false},
		{"tampered JSON body", vecToken, vecURL + "&bodySHA256=" + vecBodyHash, []byte(`{"property": "value", "boolean": false}`), "a9nBmqA0ju/hNViExpshrM61xv4=", false},
		{"tampered bodySHA256", vecToken, vecURL + "&bodySHA256=" + strings.Repeat("0", 64), []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", false},
		{"bodySHA256 not hex", vecToken, vecURL + "&bodySHA256=zz" + vecBodyHash[2:], []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", false},
		{"bodySHA256 short", vecToken, vecURL + "&bodySHA256=" + vecBodyHash[:62], []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", false},
		{"bodySHA256 uppercase hex", vecToken, vecURL + "&bodySHA256=" + strings.ToUpper(vecBodyHash), []byte(vecJSONBody),
			SignTwilio(vecToken, vecURL+"&bodySHA256="+strings.ToUpper(vecBodyHash), nil), true},
		{"signature of the JSON as if form", vecToken, vecURL, []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=", false},
		// Never valid.
		{"empty signature", vecToken, vecURL, vecCBody, "", false},
		{"empty token", "", vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"empty token, its own signature", "", vecURL, vecCBody, b64HMAC("", vecURL+"CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309ReasonParticipantReasonConferenceEndedtestTo+18005551212"), false},
		{"signature padded", vecToken, vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY= ", false},
		{"signature truncated", vecToken, vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY", false},
		{"malformed escape in body", vecToken, vecURL, []byte("Digits=12%3"), SignTwilio(vecToken, vecURL, []byte("Digits=12")), false},
		{"malformed escape in key", vecToken, vecURL, []byte("Dig%zzits=1234"), "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyTwilio(tt.token, tt.url, tt.body, tt.sig); got != tt.want {
				t.Errorf("VerifyTwilio(%q, %q, %q, %q) = %v, want %v", tt.token, tt.url, tt.body, tt.sig, got, tt.want)
			}
		})
	}
}

func b64HMAC(key, msg string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignTwilio(t *testing.T) {
	tests := []struct {
		name  string
		token string
		url   string
		body  []byte
		want  string
	}{
		{"A", vecToken, vecURL, vecABody, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"A :443", vecToken, strings.Replace(vecURL, ".com", ".com:443", 1), vecABody, "EpDEmp1PyjDYp77YxYU3GILBWzE="},
		// B's documented string to sign, hashed independently of SignTwilio.
		{"B", vecToken, "https://example.com/myapp.php?foo=1&bar=2", vecBBody,
			b64HMAC(vecToken, "https://example.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675310Digits1234From+14158675310To+18005551212")},
		{"B docs value", vecToken, "https://example.com/myapp.php?foo=1&bar=2", vecBBody, "L/OH5YylLD5NRKLltdqwSvS0BnU="},
		{"C", vecToken, vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"C :443", vecToken, strings.Replace(vecURL, ".com", ".com:443", 1), vecCBody, "nlYDL9HO41xd+GBsch67HROPYMY="},
		{"C :80", vecToken, strings.Replace(vecHTTPURL, ".com", ".com:80", 1), vecCBody, "oCUk9kaPGFSgDUJ9NnSKaV+LTwE="},
		{"C :1234", vecToken, strings.Replace(vecURL, ".com", ".com:1234", 1), vecCBody, "AU2e5pW17Utr6M3MPhtn/Bruk84="},
		{"C JSON", vecToken, vecURL + "&bodySHA256=" + vecBodyHash, []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4="},
		{"C form", vecToken, vecURL, []byte("property=value&boolean=true"), "NBdBDr/T/lgjI+tlgpXjKZQZs/k="},
		{"repeated key", vecToken, vecURL, []byte("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"), "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
		{"fragment dropped", vecToken, vecURL + "#ct=1000&rt=1000", vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		// An exact duplicate pair counts once, as twilio-python's sorted(set(values)).
		{"duplicate pair", vecToken, vecURL, []byte("Digits=1&Digits=1&A=2"), b64HMAC(vecToken, vecURL+"A2Digits1")},
		{"empty pairs skipped", vecToken, vecURL, []byte("&A=2&&B&"), b64HMAC(vecToken, vecURL+"A2B")},
		{"semicolon is literal", vecToken, vecURL, []byte("A=1;B=2"), b64HMAC(vecToken, vecURL+"A1;B=2")},
		{"no scheme", vecToken, "/status?x=1", []byte("A=1"), b64HMAC(vecToken, "/status?x=1A1")},
		{"empty token", "", vecURL, vecCBody, ""},
		{"malformed body", vecToken, vecURL, []byte("A=%"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SignTwilio(tt.token, tt.url, tt.body); got != tt.want {
				t.Errorf("SignTwilio(%q, %q, %q) = %q, want %q", tt.token, tt.url, tt.body, got, tt.want)
			}
		})
	}
}

// A body with an exact duplicate pair verifies whether the carrier signed it with the
// pair once (twilio-python) or twice (every pair as sent).
func TestVerifyTwilioDuplicatePair(t *testing.T) {
	body := []byte("Digits=1&Digits=1&A=2")
	for _, signed := range []string{vecURL + "A2Digits1", vecURL + "A2Digits1Digits1"} {
		if !VerifyTwilio(vecToken, vecURL, body, b64HMAC(vecToken, signed)) {
			t.Errorf("signature of %q did not verify", signed)
		}
	}
	if VerifyTwilio(vecToken, vecURL, body, b64HMAC(vecToken, vecURL+"A2Digits1Digits1Digits1")) {
		t.Error("a pair signed three times verified")
	}
}

func TestSplitTwilioURL(t *testing.T) {
	tests := []struct {
		in                            string
		scheme, host, port, def, rest string
	}{
		{"https://example.com/a?b=1#c", "https://", "example.com", "", ":443", "/a?b=1"},
		{"HTTPS://example.com:8443?b", "HTTPS://", "example.com", ":8443", ":443", "?b"},
		{"wss://u:p@example.com:443", "wss://", "example.com", ":443", ":443", ""},
		{"ws://[::1]:8080/media", "ws://", "[::1]", ":8080", ":80", "/media"},
		{"http://[::1]/media", "http://", "[::1]", "", ":80", "/media"},
		{"ftp://example.com/x", "ftp://", "example.com", "", "", "/x"},
		{"/status?next=https://x", "", "", "", "", "/status?next=https://x"},
		{"1http://x", "", "", "", "", "1http://x"},
	}
	for _, tt := range tests {
		u := splitTwilioURL(tt.in)
		if u.scheme != tt.scheme || u.host != tt.host || u.port != tt.port || u.defaultPort != tt.def || u.rest != tt.rest {
			t.Errorf("splitTwilioURL(%q) = %+v", tt.in, u)
		}
	}
}

// realisticStatusCallback is a completed-call status callback with the ~25 parameters
// Twilio sends (§1.2).
func realisticStatusCallback() []byte {
	return form(
		"Called", "+15551234567", "ToState", "CA", "CallerCountry", "US", "Direction", "outbound-api",
		"Timestamp", "Sun, 25 Mar 2018 09:53:19 +0000", "CallbackSource", "call-progress-events",
		"CallerState", "CA", "ToZip", "94105", "SequenceNumber", "3", "CallSid", "CA0123456789abcdef0123456789abcdef",
		"To", "+15551234567", "CallerZip", "94105", "ToCountry", "US", "CalledZip", "94105",
		"ApiVersion", "2010-04-01", "CalledCity", "SAN FRANCISCO", "CallStatus", "completed", "Duration", "1",
		"From", "+15557654321", "CallDuration", "49", "AccountSid", "AC0123456789abcdef0123456789abcdef",
		"CalledCountry", "US", "CallerCity", "SAN FRANCISCO", "ToCity", "SAN FRANCISCO", "FromCountry", "US",
		"Caller", "+15557654321", "FromCity", "SAN FRANCISCO", "CalledState", "CA", "FromZip", "94105",
		"FromState", "CA", "SipResponseCode", "200",
	)
}

const benchURL = "https://switchboard.example.com/webhooks/twilio-1/status?sb_call=CL0123456789abcdef01234567"

func BenchmarkVerifyTwilio(b *testing.B) {
	body := realisticStatusCallback()
	sig := SignTwilio("0123456789abcdef0123456789abcdef", benchURL, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !VerifyTwilio("0123456789abcdef0123456789abcdef", benchURL, body, sig) {
			b.Fatal("signature did not verify")
		}
	}
}

// BenchmarkVerifyTwilioDefaultPort measures the common voice-over-HTTPS case where Twilio
// signed without the port we were configured with, so the second URL form matches.
func BenchmarkVerifyTwilioDefaultPort(b *testing.B) {
	body := realisticStatusCallback()
	sig := SignTwilio("0123456789abcdef0123456789abcdef", benchURL, body)
	u := strings.Replace(benchURL, ".com", ".com:443", 1)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyTwilio("0123456789abcdef0123456789abcdef", u, body, sig) {
			b.Fatal("signature did not verify")
		}
	}
}

func BenchmarkVerifyTwilioJSON(b *testing.B) {
	body := []byte(vecJSONBody)
	sum := sha256.Sum256(body)
	u := benchURL + "&bodySHA256=" + hex.EncodeToString(sum[:])
	sig := SignTwilio(vecToken, u, body)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyTwilio(vecToken, u, body, sig) {
			b.Fatal("signature did not verify")
		}
	}
}

// FuzzVerifyTwilio: no input panics, and whatever SignTwilio signs VerifyTwilio accepts,
// for any token, URL and body, and for the same body as JSON under bodySHA256.
func FuzzVerifyTwilio(f *testing.F) {
	f.Add(vecToken, vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=")
	f.Add(vecToken, strings.Replace(vecURL, ".com", ".com:1234", 1), vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=")
	f.Add(vecToken, vecHTTPURL, vecCBody, "n2xBNyzSW7rfYStDtOFiFMv7qNo=")
	f.Add(vecToken, "https://example.com/myapp.php?foo=1&bar=2", vecBBody, "L/OH5YylLD5NRKLltdqwSvS0BnU=")
	f.Add(vecToken, vecURL+"&bodySHA256="+vecBodyHash, []byte(vecJSONBody), "a9nBmqA0ju/hNViExpshrM61xv4=")
	f.Add(vecToken, vecURL+"#ct=1000&rt=1000", []byte("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"), "IK+Dwps556ElfBT0I3Rgjkr1wJU=")
	f.Add("tok", "wss://u:p@[::1]:8443/media?x=%zz#f", []byte("a=%2&b"), "")
	f.Add("", "", []byte(nil), "")
	f.Fuzz(func(t *testing.T, token, rawURL string, body []byte, sig string) {
		VerifyTwilio(token, rawURL, body, sig)
		good := SignTwilio(token, rawURL, body)
		if token == "" || good == "" {
			return
		}
		if len(good) != twilioSigLen {
			t.Fatalf("SignTwilio = %q, want %d characters", good, twilioSigLen)
		}
		if strings.Contains(rawURL, "bodySHA256") {
			return // whether the body matches the URL's hash is the input's business
		}
		if !VerifyTwilio(token, rawURL, body, good) {
			t.Fatalf("VerifyTwilio(%q, %q, %q) rejected SignTwilio's %q", token, rawURL, body, good)
		}
		if VerifyTwilio(token+"x", rawURL, body, good) {
			t.Fatal("a different token verified")
		}
		if VerifyTwilio(token, rawURL, append(append([]byte{}, body...), "&zz=1"...), good) {
			t.Fatal("an extra body pair verified")
		}
		base, frag, hasFrag := strings.Cut(rawURL, "#")
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		sum := sha256.Sum256(body)
		jsonURL := base + sep + "bodySHA256=" + hex.EncodeToString(sum[:])
		if hasFrag {
			jsonURL += "#" + frag
		}
		jsonSig := SignTwilio(token, jsonURL, body)
		if !VerifyTwilio(token, jsonURL, body, jsonSig) {
			t.Fatalf("VerifyTwilio rejected SignTwilio's %q for %q under bodySHA256", jsonSig, jsonURL)
		}
		if VerifyTwilio(token, jsonURL, append(append([]byte{}, body...), ' '), jsonSig) {
			t.Fatal("a body not matching bodySHA256 verified")
		}
	})
}

// A body past what the scratch pool keeps still verifies, and so do the ones after it.
func TestVerifyTwilioLargeBody(t *testing.T) {
	large := form("CallSid", testSid, "Big", strings.Repeat("x+y%z", 30000))
	for _, body := range [][]byte{large, vecCBody, large} {
		if !VerifyTwilio(vecToken, vecURL, body, SignTwilio(vecToken, vecURL, body)) {
			t.Fatalf("a %d-byte body did not verify", len(body))
		}
	}
	if !VerifyTwilio(vecToken, vecURL, vecCBody, "vOEb5UThFn24KEfnOFLQY2AE5FY=") {
		t.Fatal("vector C failed after a large body")
	}
}
