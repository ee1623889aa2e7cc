package carrier

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestPlainHTTPAPIURLNeedsLoopbackOrConsent: credentials travel with every REST request, so
// http:// is accepted only to this machine, or when the carrier says allow_insecure_api_url.
func TestPlainHTTPAPIURLNeedsLoopbackOrConsent(t *testing.T) {
	for _, tc := range []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"https://api.twilio.com", false, true},
		{"https://carrier.example.com:8443/base", false, true},
		{"http://127.0.0.1:8090", false, true},
		{"http://127.5.6.7:8090", false, true},
		{"http://localhost:8090", false, true},
		{"http://LOCALHOST", false, true},
		{"http://[::1]:8090", false, true},
		{"http://carrier.example.com", false, false},
		{"http://10.0.0.5:8090", false, false},
		{"http://localhost.example.com", false, false},
		{"http://127.0.0.1.nip.io", false, false},
		{"http://carrier.example.com", true, true},
		{"http://10.0.0.5:8090", true, true},
	} {
		c := twilioConfig()
		c.APIURL, c.AllowInsecureAPIURL = tc.url, tc.allow
		err := c.Normalize()
		var one *ValidationError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s (allow %v): refused: %v", tc.url, tc.allow, err)
		case !tc.ok && (!errors.As(err, &one) || one.Field != "api_url" || !strings.Contains(one.Message, "allow_insecure_api_url")):
			t.Errorf("%s (allow %v): want an api_url error naming allow_insecure_api_url, got %v", tc.url, tc.allow, err)
		}
	}

	// The setting is part of the configuration as stored and as shown.
	var c Config
	if err := json.Unmarshal([]byte(`{"id":"x","kind":"twilio","api_url":"http://carrier.example.com","allow_insecure_api_url":true}`), &c); err != nil || !c.AllowInsecureAPIURL {
		t.Fatalf("decode: %+v %v", c, err)
	}
	if b, _ := json.Marshal(c.Public()); !strings.Contains(string(b), `"allow_insecure_api_url":true`) {
		t.Fatalf("public form: %s", b)
	}
}
