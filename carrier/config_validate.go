package carrier

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// ValidationError says what is wrong with one field of a Config. Field is the JSON name
// ("breaker.window"), so an admin API can point at the input. Message never contains a
// secret value.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// ValidationErrors is every problem Normalize found, in field order.
type ValidationErrors []*ValidationError

func (es ValidationErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return "carrier config: " + strings.Join(msgs, "; ")
}

// Unwrap lets errors.As find each *ValidationError.
func (es ValidationErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// validate checks every field of a Config whose defaults are applied, and returns every
// problem at once, in field order.
func (c *Config) validate() ValidationErrors {
	var errs ValidationErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	if !validID(c.ID) {
		bad("id", "want 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit")
	}

	switch c.Kind {
	case Twilio, Telnyx:
	default:
		bad("kind", "want twilio or telnyx")
	}

	if u, msg := checkAPIURL(c.APIURL); msg != "" {
		bad("api_url", "%s", msg)
	} else if msg := checkCleartext(u, c.AllowInsecureAPIURL); msg != "" {
		bad("api_url", "%s", msg)
	}

	// Credentials of the other kind are refused rather than ignored: a Telnyx key left on a
	// carrier switched to Twilio would otherwise sit in the store, unused and forgotten.
	switch c.Kind {
	case Twilio:
		if c.AccountSID == "" {
			bad("account_sid", "required for kind twilio")
		} else if !validToken(c.AccountSID, 64, true) {
			bad("account_sid", "want up to 64 characters of A-Z, a-z, 0-9, '_' and '-'")
		}
		checkSecret(&errs, "auth_token", c.AuthToken, "twilio")
		for _, f := range []struct{ name, v string }{{"api_key", c.APIKey}, {"connection_id", c.ConnectionID}, {"public_key", c.PublicKey}} {
			if f.v != "" {
				bad(f.name, "not used by kind twilio; leave it empty")
			}
		}
	case Telnyx:
		checkSecret(&errs, "api_key", c.APIKey, "telnyx")
		if c.ConnectionID == "" {
			bad("connection_id", "required for kind telnyx")
		} else if !validToken(c.ConnectionID, 128, false) {
			bad("connection_id", "want up to 128 printable characters without spaces")
		}
		if c.PublicKey == "" {
			bad("public_key", "required for kind telnyx (webhooks are checked against it)")
		} else if k, err := base64.StdEncoding.DecodeString(c.PublicKey); err != nil || len(k) != 32 {
			bad("public_key", "want the base64 of a 32-byte Ed25519 public key, as Mission Control shows it")
		}
		for _, f := range []struct{ name, v string }{{"account_sid", c.AccountSID}, {"auth_token", c.AuthToken}} {
			if f.v != "" {
				bad(f.name, "not used by kind telnyx; leave it empty")
			}
		}
	}

	if !IsE164(c.From) {
		bad("from", "%q is not an E.164 number such as +15551234567", c.From)
	}
	if c.Priority < 0 || c.Priority > maxPriority {
		bad("priority", "%d is outside 0..%d", c.Priority, maxPriority)
	}
	if c.Weight < 1 || c.Weight > maxWeight {
		bad("weight", "%d is outside 1..%d", c.Weight, maxWeight)
	}

	checkDuration(&errs, "request_timeout", c.RequestTimeout, minRequestTimeout, MaxRequestTimeout)

	b := c.Breaker
	if b.FailureThreshold < 1 || b.FailureThreshold > 1000 {
		bad("breaker.failure_threshold", "%d is outside 1..1000", b.FailureThreshold)
	}
	// The negated form also catches NaN.
	if !(b.FailureRatio >= 0.01 && b.FailureRatio <= 1) {
		bad("breaker.failure_ratio", "%g is outside 0.01..1", b.FailureRatio)
	}
	if b.MinRequests < 1 || b.MinRequests > 10000 {
		bad("breaker.min_requests", "%d is outside 1..10000", b.MinRequests)
	}
	windowOK := checkDuration(&errs, "breaker.window", b.Window, minWindow, maxWindow)
	switch {
	case b.BucketPeriod == 0 && !windowOK:
		// No default without a window; the window's own error says what to fix.
	case !checkDuration(&errs, "breaker.bucket_period", b.BucketPeriod, 100*time.Millisecond, time.Hour), !windowOK:
	case b.BucketPeriod > b.Window:
		bad("breaker.bucket_period", "%v is longer than the window %v", b.BucketPeriod, b.Window)
	case b.Window/b.BucketPeriod > maxBuckets:
		bad("breaker.bucket_period", "%v splits the window %v into more than %d buckets", b.BucketPeriod, b.Window, maxBuckets)
	}
	checkDuration(&errs, "breaker.open_timeout", b.OpenTimeout, time.Second, time.Hour)
	checkDuration(&errs, "breaker.callback_deadline", b.CallbackDeadline, time.Second, 5*time.Minute)

	return errs
}

func checkDuration(errs *ValidationErrors, field string, d Duration, lo, hi time.Duration) bool {
	if d.Std() < lo || d.Std() > hi {
		*errs = append(*errs, &ValidationError{Field: field, Message: fmt.Sprintf("%v is outside %v..%v", d, lo, hi)})
		return false
	}
	return true
}

// checkSecret never puts the value in a message: a near-miss secret is still a secret.
func checkSecret(errs *ValidationErrors, field, v, kind string) {
	switch {
	case v == "":
		*errs = append(*errs, &ValidationError{Field: field, Message: "required for kind " + kind})
	case !validToken(v, 512, false):
		*errs = append(*errs, &ValidationError{Field: field, Message: "must be at most 512 printable characters without spaces"})
	}
}

// checkAPIURL returns the URL without a trailing slash, or why it is refused. User info is
// refused because a password in a URL ends up in logs and error messages; credentials belong
// in their own fields, which are never printed.
func checkAPIURL(s string) (string, string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "", "want an absolute http:// or https:// URL"
	case u.Host == "" || u.Opaque != "":
		return "", "want an absolute URL with a host"
	case u.User != nil:
		return "", "must not carry user info; put credentials in their own fields"
	case u.RawQuery != "" || u.ForceQuery:
		return "", "must not carry a query"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", "must not carry a fragment"
	}
	return strings.TrimRight(s, "/"), ""
}

// checkCleartext refuses plain http:// to anything but this machine unless allowed: every
// REST request carries the carrier's credentials (Basic auth or a bearer key). Loopback stays
// allowed for simulators and local proxies, which never leave the host.
func checkCleartext(apiURL string, allowed bool) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme != "http" || allowed || loopbackHost(u.Hostname()) {
		return ""
	}
	return "plain http:// would send the carrier's credentials in clear; use https://, " +
		"or set allow_insecure_api_url: true (http:// to a loopback host is always allowed)"
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validID(s string) bool {
	if len(s) < 1 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validToken accepts printable ASCII without spaces; narrow restricts it to [A-Za-z0-9_-],
// for values that go into a URL path.
func validToken(s string, maxLen int, narrow bool) bool {
	if len(s) < 1 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if narrow {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		} else if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
