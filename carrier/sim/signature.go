package sim

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
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

// signTelnyx returns the telnyx-timestamp and telnyx-signature-ed25519 header values for a
// webhook body: an Ed25519 signature over "timestamp|body".
func signTelnyx(priv ed25519.PrivateKey, at time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(at.Unix(), 10)
	msg := make([]byte, 0, len(timestamp)+1+len(body))
	msg = append(append(append(msg, timestamp...), '|'), body...)
	return timestamp, base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
}

// stripFragment drops a URL's #fragment, which Twilio uses for connection overrides and
// leaves out of both the request and the signature.
func stripFragment(rawURL string) string {
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		return rawURL[:i]
	}
	return rawURL
}
