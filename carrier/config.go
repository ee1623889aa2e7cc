package carrier

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Config is one carrier as the admin configures it.
//
// Its JSON form carries the secrets (AuthToken, APIKey): it is what an admin PUT decodes and
// what the store keeps, and nothing else. Anything that leaves the process (admin API
// answers, logs, the route dry run) uses Public, which has no secret fields at all. Printing
// a Config with fmt or slog shows no secrets either.
type Config struct {
	ID     string `json:"id"`      // [a-z0-9][a-z0-9-]{0,62}; part of our webhook URLs
	Kind   Kind   `json:"kind"`    // twilio or telnyx
	APIURL string `json:"api_url"` // REST base URL; defaults to the kind's public API
	// AllowInsecureAPIURL lets api_url be plain http:// to a host that is not loopback. The
	// carrier's credentials then cross the network in clear, so it is never the default.
	AllowInsecureAPIURL bool `json:"allow_insecure_api_url,omitempty"`

	AccountSID string `json:"account_sid,omitempty"` // twilio
	AuthToken  string `json:"auth_token,omitempty"`  // twilio; secret

	APIKey       string `json:"api_key,omitempty"`       // telnyx; secret
	ConnectionID string `json:"connection_id,omitempty"` // telnyx
	PublicKey    string `json:"public_key,omitempty"`    // telnyx webhook Ed25519 key, base64 of 32 bytes

	From     string `json:"from"`     // caller id, E.164
	Priority int    `json:"priority"` // lower is tried first
	Weight   int    `json:"weight"`   // share of calls within a priority; default 1
	Enabled  bool   `json:"enabled"`

	Breaker BreakerSettings `json:"breaker"`

	// RequestTimeout bounds each REST request, whatever the caller's context allows: a
	// carrier that takes longer is treated as sick, and the call moves on to the next one
	// while the caller is still listening to silence rather than after it gave up.
	RequestTimeout Duration `json:"request_timeout"`
}

// BreakerSettings tune the circuit breaker that stops sending calls to a sick carrier. The
// breaker opens after FailureThreshold failures in a row, or when at least MinRequests
// attempts in the last Window failed in a proportion of FailureRatio or more; it stays open
// for OpenTimeout and then lets one trial call through. A placed call counts as failed if no
// callback arrives within CallbackDeadline.
type BreakerSettings struct {
	FailureThreshold int      `json:"failure_threshold"`
	FailureRatio     float64  `json:"failure_ratio"`
	MinRequests      int      `json:"min_requests"`
	Window           Duration `json:"window"`
	BucketPeriod     Duration `json:"bucket_period"`
	OpenTimeout      Duration `json:"open_timeout"`
	CallbackDeadline Duration `json:"callback_deadline"`
}

// Defaults and bounds applied by Normalize. A zero field takes its default; a value outside
// its bounds is an error, not silently clamped, so an admin sees the typo.
//
//	field                      default        bounds
//	weight                     1              1 .. 1000
//	priority                   0              0 .. 65535 (Twilio's origination range)
//	request_timeout            2s             100ms .. 10s
//	breaker.failure_threshold  5              1 .. 1000
//	breaker.failure_ratio      0.5            0.01 .. 1
//	breaker.min_requests       10             1 .. 10000
//	breaker.window             60s            1s .. 1h
//	breaker.bucket_period      window/10      100ms .. window, at most 600 buckets
//	breaker.open_timeout       30s            1s .. 1h
//	breaker.callback_deadline  10s            1s .. 5m
//
// The request timeout stops at 10 s because a caller waiting in silence for longer has
// usually hung up; Twilio itself gives up fetching TwiML after 15 s.
const (
	DefaultRequestTimeout   = 2 * time.Second
	MaxRequestTimeout       = 10 * time.Second
	DefaultCallbackDeadline = 10 * time.Second
)

const (
	minRequestTimeout       = 100 * time.Millisecond
	defaultWeight           = 1
	maxWeight               = 1000
	maxPriority             = 65535
	defaultFailureThreshold = 5
	defaultFailureRatio     = 0.5
	defaultMinRequests      = 10
	defaultWindow           = 60 * time.Second
	defaultOpenTimeout      = 30 * time.Second
	maxBuckets              = 600
)

// DefaultAPIURL is the public REST base URL of each kind, used when api_url is left empty.
func DefaultAPIURL(k Kind) string {
	switch k {
	case Twilio:
		return "https://api.twilio.com"
	case Telnyx:
		return "https://api.telnyx.com"
	}
	return ""
}

// Normalize fills defaults and checks every field, returning ValidationErrors listing all
// problems at once (nil if none). Call it on every Config that comes in from outside, after
// MergeSecrets.
func (c *Config) Normalize() error {
	c.applyDefaults()
	if errs := c.validate(); len(errs) > 0 {
		return errs
	}
	c.APIURL, _ = checkAPIURL(c.APIURL) // its canonical form, now that it is known to be valid
	return nil
}

// Bounds of the breaker's rolling window; a bucket period is only derived from a window
// inside them.
const (
	minWindow = time.Second
	maxWindow = time.Hour
)

// applyDefaults fills every field left at its zero value that has a default.
func (c *Config) applyDefaults() {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL(c.Kind)
	}
	if c.Weight == 0 {
		c.Weight = defaultWeight
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	b := &c.Breaker
	if b.FailureThreshold == 0 {
		b.FailureThreshold = defaultFailureThreshold
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = defaultFailureRatio
	}
	if b.MinRequests == 0 {
		b.MinRequests = defaultMinRequests
	}
	if b.Window == 0 {
		b.Window = Duration(defaultWindow)
	}
	if b.BucketPeriod == 0 && b.Window.Std() >= minWindow && b.Window.Std() <= maxWindow {
		b.BucketPeriod = max(b.Window/10, Duration(100*time.Millisecond))
	}
	if b.OpenTimeout == 0 {
		b.OpenTimeout = Duration(defaultOpenTimeout)
	}
	if b.CallbackDeadline == 0 {
		b.CallbackDeadline = Duration(DefaultCallbackDeadline)
	}
}

// IsE164 reports whether s is an E.164 number as carriers take it: '+', a non-zero digit,
// then 6 to 14 more digits (^\+[1-9][0-9]{6,14}$).
func IsE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MergeSecrets keeps the stored secrets (from old) that an update left empty, so an admin
// PUT that omits them does not wipe them: secrets are write-only, so the admin page never
// has them to send back.
//
// A stored secret is kept only while it would still go to the same place: same kind, same
// api_url and, for twilio, the same account. Otherwise whoever can change api_url could
// point it at their own server and receive the stored token with the next call; the update
// must then carry the secret again, and Normalize says so.
func (c *Config) MergeSecrets(old Config) {
	if c.Kind != old.Kind || !sameURL(c.APIURL, old.APIURL, c.Kind) {
		return
	}
	if c.AuthToken == "" && c.AccountSID == old.AccountSID {
		c.AuthToken = old.AuthToken
	}
	if c.APIKey == "" {
		c.APIKey = old.APIKey
	}
}

func sameURL(a, b string, k Kind) bool {
	norm := func(s string) string {
		if s == "" {
			s = DefaultAPIURL(k)
		}
		return strings.TrimRight(s, "/")
	}
	return norm(a) == norm(b)
}

// Redacted returns a copy with every secret emptied, for in-process uses that must not see
// them. Use Public for anything that is marshalled or leaves the process.
func (c Config) Redacted() Config {
	c.AuthToken = ""
	c.APIKey = ""
	return c
}

// PublicConfig is a carrier's configuration as it may be shown: every field of Config except
// the secrets, which it has no fields for, plus whether each secret is set.
type PublicConfig struct {
	ID     string `json:"id"`
	Kind   Kind   `json:"kind"`
	APIURL string `json:"api_url"`
	// AllowInsecureAPIURL is shown, so the console makes a cleartext carrier visible.
	AllowInsecureAPIURL bool            `json:"allow_insecure_api_url"`
	AccountSID          string          `json:"account_sid,omitempty"`
	HasAuthToken        bool            `json:"has_auth_token"`
	HasAPIKey           bool            `json:"has_api_key"`
	ConnectionID        string          `json:"connection_id,omitempty"`
	PublicKey           string          `json:"public_key,omitempty"`
	From                string          `json:"from"`
	Priority            int             `json:"priority"`
	Weight              int             `json:"weight"`
	Enabled             bool            `json:"enabled"`
	Breaker             BreakerSettings `json:"breaker"`
	RequestTimeout      Duration        `json:"request_timeout"`
}

// Public is the form of c for admin API answers, logs and anything else that leaves the
// process.
func (c Config) Public() PublicConfig {
	return PublicConfig{
		ID:                  c.ID,
		Kind:                c.Kind,
		APIURL:              c.APIURL,
		AllowInsecureAPIURL: c.AllowInsecureAPIURL,
		AccountSID:          c.AccountSID,
		HasAuthToken:        c.AuthToken != "",
		HasAPIKey:           c.APIKey != "",
		ConnectionID:        c.ConnectionID,
		PublicKey:           c.PublicKey,
		From:                c.From,
		Priority:            c.Priority,
		Weight:              c.Weight,
		Enabled:             c.Enabled,
		Breaker:             c.Breaker,
		RequestTimeout:      c.RequestTimeout,
	}
}

const redactedMark = "[redacted]"

func (c Config) String() string {
	state := "disabled"
	if c.Enabled {
		state = "enabled"
	}
	return fmt.Sprintf("carrier %q (%v, %s, from %s, priority %d, weight %d, %s)",
		c.ID, c.Kind, c.APIURL, c.From, c.Priority, c.Weight, state)
}

// GoString shows every field, with a mark in place of each secret that is set.
func (c Config) GoString() string {
	type plain Config // no methods, so %#v does not recurse into GoString
	p := plain(c)
	if p.AuthToken != "" {
		p.AuthToken = redactedMark
	}
	if p.APIKey != "" {
		p.APIKey = redactedMark
	}
	return strings.Replace(fmt.Sprintf("%#v", p), "carrier.plain{", "carrier.Config{", 1)
}

// Format covers every verb, not only %v and %s: without it, %d or %x would print the
// struct field by field, secrets included.
func (c Config) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, c.GoString()) // a fmt.State write error has nowhere to go: fmt reports it itself
	case verb == 'q':
		_, _ = fmt.Fprintf(f, "%q", c.String()) // as above
	default:
		_, _ = io.WriteString(f, c.String()) // as above
	}
}

// LogValue makes slog print the public form.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("kind", c.Kind.String()),
		slog.String("api_url", c.APIURL),
		slog.String("from", c.From),
		slog.Int("priority", c.Priority),
		slog.Int("weight", c.Weight),
		slog.Bool("enabled", c.Enabled),
		slog.Bool("has_auth_token", c.AuthToken != ""),
		slog.Bool("has_api_key", c.APIKey != ""),
	)
}

// RequestTimeout is how long one request to cfg's API may take: its RequestTimeout, defaulted
// and capped as the clients do.
func RequestTimeout(cfg Config) time.Duration { return requestTimeout(cfg) }
