package signal

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://Agents.Example.com", "https://agents.example.com"},
		{"https://agents.example.com:443", "https://agents.example.com"},
		{"http://agents.example.com:80/", "http://agents.example.com"},
		{"https://agents.example.com:8443", "https://agents.example.com:8443"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{" https://a.example ", "https://a.example"},
	} {
		if got, err := ParseOrigin(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "agents.example.com", "ftp://a.example", "https://a.example/app",
		"https://a.example?x=1", "https://a.example#f", "https://user@a.example", "https://", "null"} {
		if got, err := ParseOrigin(bad); err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want an error", bad, got)
		}
	}
}

// TestOriginIsNeverTheRequestsHost: a page on any other origin is refused even when the
// request's Host names it (DNS rebinding: the attacker's name re-pointed at our address).
func TestOriginIsNeverTheRequestsHost(t *testing.T) {
	o := NewOrigins("https://voice.example.com", []string{"https://agents.example.com", "http://desk.example.net:8080"})
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"", "voice.example.com", true}, // not a browser: the token decides
		{"https://voice.example.com", "voice.example.com", true},
		{"https://VOICE.example.com:443", "x", true},
		{"https://agents.example.com", "voice.example.com", true},
		{"http://desk.example.net:8080", "voice.example.com", true},
		{"http://voice.example.com", "voice.example.com", false}, // another scheme is another origin
		{"https://rebound.attacker.example", "rebound.attacker.example", false},
		{"http://rebound.attacker.example:8080", "rebound.attacker.example:8080", false},
		{"http://desk.example.net:9090", "desk.example.net:9090", false},
		{"null", "voice.example.com", false},
		{"http://localhost:8080", "localhost:8080", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/agent/ws", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := o.Allow(r); got != tc.want {
			t.Errorf("Origin %q, Host %q: allowed %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}

	// On a loopback public URL (the demo) every loopback name of that port is the same page.
	demo := NewOrigins("http://localhost:8080", nil)
	for origin, want := range map[string]bool{
		"http://localhost:8080": true, "http://127.0.0.1:8080": true, "http://[::1]:8080": true,
		"http://127.0.0.1:9090": false, "https://localhost:8080": false, "http://evil.example:8080": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/agent/ws", nil)
		r.Header.Set("Origin", origin)
		if got := demo.Allow(r); got != want {
			t.Errorf("demo: Origin %q allowed %v, want %v", origin, got, want)
		}
	}
}

// FuzzParseOrigin: the Origin header is whatever a client sends. Parsing never panics, and
// an accepted origin parses to itself, so comparing canonical forms is sound.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example", "http://[::1]:8080", "HTTP://A.EXAMPLE:80/", "null", "https://a.example:443", "http://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOrigin(s)
		if err != nil {
			return
		}
		again, err := ParseOrigin(o)
		if err != nil || again != o {
			t.Fatalf("ParseOrigin(%q) = %q, which parses to %q, %v", s, o, again, err)
		}
	})
}
