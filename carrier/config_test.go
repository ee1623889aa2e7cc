package carrier

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testToken  = "tok-SECRET-6f1b0c2e9a"
	testAPIKey = "KEY-SECRET-01977d3c5b"
)

// A real 32-byte key in base64 (all 0x2a bytes).
var pubKey32 = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="

func twilioConfig() Config {
	return Config{
		ID: "primary", Kind: Twilio, APIURL: "http://127.0.0.1:8090/",
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: testToken,
		From: "+15550001111", Enabled: true,
	}
}

func telnyxConfig() Config {
	return Config{
		ID: "backup-1", Kind: Telnyx, APIKey: testAPIKey, ConnectionID: "1494404757140276705",
		PublicKey: pubKey32, From: "+15550002222", Priority: 1, Weight: 3, Enabled: true,
	}
}

func TestNormalizeFillsDefaults(t *testing.T) {
	c := twilioConfig()
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	want := BreakerSettings{
		FailureThreshold: 5, FailureRatio: 0.5, MinRequests: 10,
		Window: Duration(time.Minute), BucketPeriod: Duration(6 * time.Second),
		OpenTimeout: Duration(30 * time.Second), CallbackDeadline: Duration(10 * time.Second),
	}
	if c.Breaker != want {
		t.Errorf("breaker = %+v, want %+v", c.Breaker, want)
	}
	if c.Weight != 1 || c.RequestTimeout.Std() != 2*time.Second || c.APIURL != "http://127.0.0.1:8090" {
		t.Errorf("weight %d, request_timeout %v, api_url %q", c.Weight, c.RequestTimeout, c.APIURL)
	}

	c = telnyxConfig()
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.APIURL != "https://api.telnyx.com" || c.Weight != 3 {
		t.Errorf("api_url %q weight %d", c.APIURL, c.Weight)
	}

	// Normalizing twice changes nothing.
	again := c
	if err := again.Normalize(); err != nil || again != c {
		t.Errorf("second Normalize changed %+v to %+v (%v)", c, again, err)
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name   string
		base   func() Config
		mutate func(*Config)
		fields []string
	}{
		{"empty id", twilioConfig, func(c *Config) { c.ID = "" }, []string{"id"}},
		{"upper-case id", twilioConfig, func(c *Config) { c.ID = "Primary" }, []string{"id"}},
		{"id starting with dash", twilioConfig, func(c *Config) { c.ID = "-a" }, []string{"id"}},
		{"id too long", twilioConfig, func(c *Config) { c.ID = strings.Repeat("a", 64) }, []string{"id"}},
		{"no kind", twilioConfig, func(c *Config) { c.Kind = KindUnknown; c.APIURL = "" }, []string{"kind", "api_url"}},
		{"relative url", twilioConfig, func(c *Config) { c.APIURL = "/api" }, []string{"api_url"}},
		{"ftp url", twilioConfig, func(c *Config) { c.APIURL = "ftp://h" }, []string{"api_url"}},
		{"url with query", twilioConfig, func(c *Config) { c.APIURL = "https://h/?x=1" }, []string{"api_url"}},
		{"url with empty query", twilioConfig, func(c *Config) { c.APIURL = "https://h/?" }, []string{"api_url"}},
		{"url with fragment", twilioConfig, func(c *Config) { c.APIURL = "https://h/#f" }, []string{"api_url"}},
		{"url with user info", twilioConfig, func(c *Config) { c.APIURL = "https://u:" + testToken + "@h" }, []string{"api_url"}},
		{"twilio without sid", twilioConfig, func(c *Config) { c.AccountSID = "" }, []string{"account_sid"}},
		{"twilio sid with slash", twilioConfig, func(c *Config) { c.AccountSID = "AC/../x" }, []string{"account_sid"}},
		{"twilio without token", twilioConfig, func(c *Config) { c.AuthToken = "" }, []string{"auth_token"}},
		{"twilio token with space", twilioConfig, func(c *Config) { c.AuthToken = "a " + testToken }, []string{"auth_token"}},
		{"twilio with telnyx fields", twilioConfig, func(c *Config) { c.APIKey = testAPIKey; c.PublicKey = pubKey32 }, []string{"api_key", "public_key"}},
		{"telnyx without key", telnyxConfig, func(c *Config) { c.APIKey = "" }, []string{"api_key"}},
		{"telnyx key with newline", telnyxConfig, func(c *Config) { c.APIKey = testAPIKey + "\n" }, []string{"api_key"}},
		{"telnyx without connection", telnyxConfig, func(c *Config) { c.ConnectionID = "" }, []string{"connection_id"}},
		{"telnyx without public key", telnyxConfig, func(c *Config) { c.PublicKey = "" }, []string{"public_key"}},
		{"telnyx public key not base64", telnyxConfig, func(c *Config) { c.PublicKey = "not base64!" }, []string{"public_key"}},
		{"telnyx public key 31 bytes", telnyxConfig, func(c *Config) { c.PublicKey = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKg==" }, []string{"public_key"}},
		{"telnyx with twilio token", telnyxConfig, func(c *Config) { c.AuthToken = testToken }, []string{"auth_token"}},
		{"from without plus", twilioConfig, func(c *Config) { c.From = "15550001111" }, []string{"from"}},
		{"from starting with 0", twilioConfig, func(c *Config) { c.From = "+05550001111" }, []string{"from"}},
		{"from too short", twilioConfig, func(c *Config) { c.From = "+155500" }, []string{"from"}},
		{"from too long", twilioConfig, func(c *Config) { c.From = "+1555000111122223" }, []string{"from"}},
		{"negative priority", twilioConfig, func(c *Config) { c.Priority = -1 }, []string{"priority"}},
		{"weight too big", twilioConfig, func(c *Config) { c.Weight = 1001 }, []string{"weight"}},
		{"negative weight", twilioConfig, func(c *Config) { c.Weight = -1 }, []string{"weight"}},
		{"request timeout 15s", twilioConfig, func(c *Config) { c.RequestTimeout = Duration(15 * time.Second) }, []string{"request_timeout"}},
		{"request timeout 1ms", twilioConfig, func(c *Config) { c.RequestTimeout = Duration(time.Millisecond) }, []string{"request_timeout"}},
		{"threshold negative", twilioConfig, func(c *Config) { c.Breaker.FailureThreshold = -1 }, []string{"breaker.failure_threshold"}},
		{"ratio above 1", twilioConfig, func(c *Config) { c.Breaker.FailureRatio = 1.5 }, []string{"breaker.failure_ratio"}},
		{"ratio tiny", twilioConfig, func(c *Config) { c.Breaker.FailureRatio = 0.001 }, []string{"breaker.failure_ratio"}},
		{"min requests huge", twilioConfig, func(c *Config) { c.Breaker.MinRequests = 1e6 }, []string{"breaker.min_requests"}},
		{"window too short", twilioConfig, func(c *Config) { c.Breaker.Window = Duration(time.Millisecond) }, []string{"breaker.window"}},
		{"bucket longer than window", twilioConfig, func(c *Config) {
			c.Breaker.Window = Duration(10 * time.Second)
			c.Breaker.BucketPeriod = Duration(20 * time.Second)
		}, []string{"breaker.bucket_period"}},
		{"too many buckets", twilioConfig, func(c *Config) {
			c.Breaker.Window = Duration(time.Hour)
			c.Breaker.BucketPeriod = Duration(time.Second)
		}, []string{"breaker.bucket_period"}},
		{"open timeout negative", twilioConfig, func(c *Config) { c.Breaker.OpenTimeout = -1 }, []string{"breaker.open_timeout"}},
		{"callback deadline an hour", twilioConfig, func(c *Config) { c.Breaker.CallbackDeadline = Duration(time.Hour) }, []string{"breaker.callback_deadline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.mutate(&c)
			err := c.Normalize()
			var errs ValidationErrors
			if !errors.As(err, &errs) {
				t.Fatalf("Normalize() = %v, want ValidationErrors", err)
			}
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields = %v, want %v (%v)", fields, tt.fields, err)
			}
			var one *ValidationError
			if !errors.As(err, &one) || one.Field != tt.fields[0] {
				t.Errorf("errors.As(*ValidationError) = %v", one)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error names a secret: %v", err)
			}
		})
	}
}

func TestNormalizeCollectsEveryProblem(t *testing.T) {
	c := Config{Kind: Twilio, From: "nope", Weight: -3}
	err := c.Normalize()
	var errs ValidationErrors
	if !errors.As(err, &errs) || len(errs) != 5 {
		t.Fatalf("got %v; want id, account_sid, auth_token, from, weight", err)
	}
	if !strings.HasPrefix(err.Error(), "carrier config: id: ") {
		t.Errorf("message %q", err)
	}
}

func TestIsE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+15551234567": true, "+4930123456": true, "+1234567": true, "+123456789012345": true,
		"+123456": false, "+1234567890123456": false, "15551234567": false, "+0123456789": false,
		"+1555123456a": false, "": false, "+": false, "+1 5551234567": false, "++15551234567": false,
	} {
		if got := IsE164(s); got != want {
			t.Errorf("IsE164(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestConfigJSONDecodesAdminBody(t *testing.T) {
	body := `{"id":"primary","kind":"twilio","api_url":"https://api.twilio.com",
		"account_sid":"AC1","auth_token":"` + testToken + `","from":"+15550001111",
		"priority":0,"weight":2,"enabled":true,"request_timeout":1500,
		"breaker":{"failure_threshold":3,"failure_ratio":0.25,"min_requests":20,"window":"30s",
			"bucket_period":"3s","open_timeout":"15s","callback_deadline":"8s"}}`
	var c Config
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.AuthToken != testToken || c.RequestTimeout.Std() != 1500*time.Millisecond ||
		c.Breaker.Window.Std() != 30*time.Second || c.Breaker.FailureRatio != 0.25 || c.Weight != 2 {
		t.Errorf("decoded %#v", c)
	}
}

func secretConfigs() []Config {
	a, b := twilioConfig(), telnyxConfig()
	_ = a.Normalize()
	_ = b.Normalize()
	return []Config{a, b}
}

func TestPublicNeverCarriesSecrets(t *testing.T) {
	for _, c := range secretConfigs() {
		p := c.Public()
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, "json.Marshal(Public())", string(b))
		if !bytes.Contains(b, []byte(`"has_auth_token":`+fmt.Sprint(c.Kind == Twilio))) ||
			!bytes.Contains(b, []byte(`"has_api_key":`+fmt.Sprint(c.Kind == Telnyx))) {
			t.Errorf("public JSON lacks the has_* indicators: %s", b)
		}
		list, _ := json.Marshal([]PublicConfig{p, p})
		assertNoSecret(t, "json.Marshal([]PublicConfig)", string(list))

		r := c.Redacted()
		if r.AuthToken != "" || r.APIKey != "" {
			t.Errorf("Redacted kept a secret: %q %q", r.AuthToken, r.APIKey)
		}
		if c.AuthToken == "" && c.APIKey == "" {
			t.Fatal("Redacted changed the original")
		}
		rb, _ := json.Marshal(r)
		assertNoSecret(t, "json.Marshal(Redacted())", string(rb))
	}
}

func TestPrintingNeverShowsSecrets(t *testing.T) {
	for _, c := range secretConfigs() {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10.3v"} {
			assertNoSecret(t, verb, fmt.Sprintf(verb, c))
			assertNoSecret(t, verb+" pointer", fmt.Sprintf(verb, &c))
			assertNoSecret(t, verb+" slice", fmt.Sprintf(verb, []Config{c}))
			assertNoSecret(t, verb+" in struct", fmt.Sprintf(verb, struct{ C Config }{c}))
		}
		if !strings.Contains(fmt.Sprintf("%#v", c), redactedMark) {
			t.Errorf("%%#v should mark the secret as set: %#v", c)
		}
		if !strings.Contains(fmt.Sprint(c), c.ID) {
			t.Errorf("%%v lost the id: %v", c)
		}

		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("carrier", "cfg", c, "ptr", &c)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("carrier", "cfg", c, "ptr", &c)
		assertNoSecret(t, "slog", buf.String())
		if !strings.Contains(buf.String(), `"has_auth_token"`) {
			t.Errorf("slog JSON lacks the public fields: %s", buf.String())
		}
	}
}

func assertNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{testToken, testAPIKey, "SECRET"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows a secret: %s", where, s)
		}
	}
}

func TestMergeSecrets(t *testing.T) {
	stored := twilioConfig()
	storedT := telnyxConfig()
	tests := []struct {
		name      string
		old       Config
		update    func(*Config)
		wantToken string
		wantKey   string
	}{
		{"omitted token kept", stored, func(c *Config) { c.AuthToken = ""; c.Priority = 4 }, testToken, ""},
		{"new token wins", stored, func(c *Config) { c.AuthToken = "new" }, "new", ""},
		{"trailing slash is the same url", stored, func(c *Config) { c.AuthToken = ""; c.APIURL = "http://127.0.0.1:8090" }, testToken, ""},
		{"moved api_url drops the token", stored, func(c *Config) { c.AuthToken = ""; c.APIURL = "https://evil.example" }, "", ""},
		{"new account drops the token", stored, func(c *Config) { c.AuthToken = ""; c.AccountSID = "AC9" }, "", ""},
		{"new kind drops the token", stored, func(c *Config) { *c = telnyxConfig(); c.APIKey = "" }, "", ""},
		{"omitted key kept", storedT, func(c *Config) { c.APIKey = ""; c.Weight = 9 }, "", testAPIKey},
		{"default url written out is the same", storedT, func(c *Config) { c.APIKey = ""; c.APIURL = "https://api.telnyx.com/" }, "", testAPIKey},
		{"telnyx moved url drops the key", storedT, func(c *Config) { c.APIKey = ""; c.APIURL = "http://127.0.0.1:1" }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.old
			tt.update(&c)
			c.MergeSecrets(tt.old)
			if c.AuthToken != tt.wantToken || c.APIKey != tt.wantKey {
				t.Errorf("token %q key %q, want %q %q", c.AuthToken, c.APIKey, tt.wantToken, tt.wantKey)
			}
		})
	}

	// An update that lost its secret fails Normalize with the field named.
	c := twilioConfig()
	c.AuthToken, c.APIURL = "", "https://evil.example"
	c.MergeSecrets(twilioConfig())
	var ve *ValidationError
	if err := c.Normalize(); !errors.As(err, &ve) || ve.Field != "auth_token" {
		t.Errorf("Normalize after a moved url = %v, want auth_token required", err)
	}
}

func FuzzConfigJSON(f *testing.F) {
	f.Add(`{"id":"a","kind":"twilio","account_sid":"AC1","auth_token":"` + testToken + `","from":"+15550001111"}`)
	f.Add(`{"id":"b","kind":"telnyx","api_key":"` + testAPIKey + `","connection_id":"1","public_key":"` + pubKey32 + `","from":"+15550001111","breaker":{"window":2000,"bucket_period":"1ms"}}`)
	f.Add(`{"kind":"twilio","api_url":"http://[::1]:80/x?","request_timeout":"1h"}`)
	f.Fuzz(func(t *testing.T, in string) {
		var c Config
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			return
		}
		if err := c.Normalize(); err != nil {
			var errs ValidationErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Normalize error %v is not ValidationErrors", err)
			}
			return
		}
		again := c
		if err := again.Normalize(); err != nil || again != c {
			t.Fatalf("Normalize is not idempotent: %v", err)
		}
		// The public form is the redacted form plus the two has_* flags: nothing in it
		// can come from a secret.
		p := c.Public()
		p.HasAuthToken, p.HasAPIKey = false, false
		if p != c.Redacted().Public() {
			t.Fatalf("public form depends on a secret: %+v", p)
		}
	})
}
