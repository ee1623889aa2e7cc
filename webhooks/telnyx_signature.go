package webhooks

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Telnyx signature failures. Handlers answer both with 403; they are distinct so that a
// burst of ErrStale, which only authentic requests can produce, reads as clock skew or
// replayed webhooks rather than forgery.
var (
	ErrSignature = errors.New("webhooks: signature does not verify")
	ErrStale     = errors.New("webhooks: signed timestamp outside tolerance")
)

// TelnyxTolerance is how far a webhook's signed timestamp may be from our clock, either
// way; the same five minutes as Telnyx's own Go SDK.
const TelnyxTolerance = 5 * time.Minute

// ParseTelnyxPublicKey reads the webhook public key as Mission Control shows it: base64
// of the 32 raw Ed25519 key bytes.
func ParseTelnyxPublicKey(b64 string) (ed25519.PublicKey, error) {
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return nil, errors.New("webhooks: telnyx public key is empty")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Also take the key without its '=' padding, as it is easily copied that way.
		var rawErr error
		if key, rawErr = base64.RawStdEncoding.DecodeString(b64); rawErr != nil {
			return nil, errors.New("webhooks: telnyx public key is not base64")
		}
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("webhooks: telnyx public key has %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(key), nil
}

// VerifyTelnyx checks a Telnyx webhook: signatureB64 (the Telnyx-Signature-Ed25519
// header) must be pub's Ed25519 signature of timestamp (the Telnyx-Timestamp header, unix
// seconds), "|" and the raw body, and timestamp must be within TelnyxTolerance of now.
//
// It returns nil, or an error wrapping ErrSignature (missing, malformed or wrong signature
// or timestamp, or an unusable key) or ErrStale (authentic but too old or too far ahead).
// The signature is checked before the clock so that ErrStale is never said of a forgery.
func VerifyTelnyx(pub ed25519.PublicKey, timestamp, signatureB64 string, body []byte, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		// ed25519.Verify panics on a key of the wrong size.
		return fmt.Errorf("%w: public key is not %d bytes", ErrSignature, ed25519.PublicKeySize)
	}
	if signatureB64 == "" {
		return fmt.Errorf("%w: no signature", ErrSignature)
	}
	if base64.StdEncoding.DecodedLen(len(signatureB64)) > ed25519.SignatureSize+2 {
		return fmt.Errorf("%w: signature is not %d bytes", ErrSignature, ed25519.SignatureSize)
	}
	var sig [ed25519.SignatureSize + 2]byte
	n, err := base64.StdEncoding.Decode(sig[:], []byte(signatureB64))
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrSignature)
	}
	if n != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is not %d bytes", ErrSignature, ed25519.SignatureSize)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not unix seconds", ErrSignature)
	}
	if !ed25519.Verify(pub, telnyxSigned(timestamp, body), sig[:n]) {
		return ErrSignature
	}
	t, tol := now.Unix(), int64(TelnyxTolerance/time.Second)
	// Clamped so that no clock value, however absurd, overflows the window.
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if t > lo+tol {
		lo = t - tol
	}
	if t < hi-tol {
		hi = t + tol
	}
	if ts < lo || ts > hi {
		return fmt.Errorf("%w: signed at %d, now %d", ErrStale, ts, t)
	}
	return nil
}

// SignTelnyx is what Telnyx does to a webhook, for the carrier simulator and tests. It
// returns "" for a private key of the wrong size rather than panic as ed25519.Sign would.
func SignTelnyx(priv ed25519.PrivateKey, timestamp string, body []byte) string {
	if len(priv) != ed25519.PrivateKeySize {
		return ""
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, telnyxSigned(timestamp, body)))
}

// telnyxSigned is the signed message. It is built from the raw body bytes: any decode and
// re-encode of the JSON would change them.
func telnyxSigned(timestamp string, body []byte) []byte {
	msg := make([]byte, 0, len(timestamp)+1+len(body))
	return append(append(append(msg, timestamp...), '|'), body...)
}
