package delivery

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TwilioSignature computes X-Twilio-Signature the way Twilio does: the URL exactly as given
// (query included, fragment excluded), then every POST parameter's name and value appended
// with no delimiter, sorted by name and then by value, signed with HMAC-SHA1 keyed with the
// auth token, base64-encoded. For a GET, or a WebSocket handshake, params is nil.
func TwilioSignature(authToken, rawURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(stripFragment(rawURL))
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TwilioRequest builds a request as Twilio sends it, signed with authToken: POST with a
// form body, or GET with the parameters in the query. The fragment (Twilio's connection
// overrides) is dropped from the target. idempotencyToken is the I-Twilio-Idempotency-Token,
// one per request.
func TwilioRequest(authToken, method, rawURL string, params url.Values, idempotencyToken string) (string, string, []byte, http.Header) {
	target := stripFragment(rawURL)
	h := http.Header{}
	h.Set("User-Agent", "TwilioProxy/1.1")
	h.Set("I-Twilio-Idempotency-Token", idempotencyToken)
	var body []byte
	if method == http.MethodGet {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + params.Encode()
		h.Set("X-Twilio-Signature", TwilioSignature(authToken, target, nil))
	} else {
		body = []byte(params.Encode())
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("X-Twilio-Signature", TwilioSignature(authToken, target, params))
	}
	return method, target, body, h
}

// TelnyxHeaders returns the headers of a Telnyx webhook whose JSON body is body, signed at
// at: telnyx-signature-ed25519 is an Ed25519 signature over "timestamp|body", and
// telnyx-timestamp that timestamp in Unix seconds.
func TelnyxHeaders(priv ed25519.PrivateKey, at time.Time, body []byte) http.Header {
	timestamp := strconv.FormatInt(at.Unix(), 10)
	msg := make([]byte, 0, len(timestamp)+1+len(body))
	msg = append(append(append(msg, timestamp...), '|'), body...)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "telnyx-webhooks")
	h.Set("Telnyx-Signature-Ed25519", base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg)))
	h.Set("Telnyx-Timestamp", timestamp)
	return h
}

// stripFragment drops a URL's #fragment, which Twilio uses for connection overrides and
// leaves out of both the request and the signature.
func stripFragment(rawURL string) string {
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		return rawURL[:i]
	}
	return rawURL
}
