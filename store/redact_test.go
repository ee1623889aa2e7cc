package store

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/internal/redisurl"
)

// TestRedisURLErrorsNeverPrintThePassword: whatever is wrong with REDIS_URL, the error says so
// without the password (or the user name) in it.
func TestRedisURLErrorsNeverPrintThePassword(t *testing.T) {
	const pw = "Pa55w0rd-sekrit"
	for _, u := range []string{
		"redis://admin:" + pw + " @localhost:6379",     // a space: the URL does not parse
		"redis://admin:" + pw + "%zz@localhost:6379",   // a bad escape, quoted by the parser
		"redis://admin:" + pw + "@localhost:6379/nope", // go-redis: bad database number
		"redis://admin:" + pw + "@localhost:6379/0?dial_timeout=x",
		"rediss://admin:" + pw + "@[::1:6379",
		"redis://admin:" + pw + ",x@localhost:6379/x",
		"admin:" + pw + "@localhost:6379", // no scheme: read as a host list
		"h1:7000,admin:" + pw + "@h2:7001",
		"admin:" + pw + "@nohostport",
		"redis://:" + pw + "@127.0.0.1:1", // parses; nobody answers
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := Open(ctx, Options{URL: u}, slog.New(slog.DiscardHandler))
		cancel()
		if err == nil {
			r.Close()
			t.Errorf("%s: opened", redisurl.Redact(u))
			continue
		}
		if msg := err.Error(); strings.Contains(msg, pw) || strings.Contains(msg, "admin:") || strings.Contains(msg, "sekrit") {
			t.Errorf("the error for a bad REDIS_URL shows the password: %s", msg)
		} else {
			t.Logf("%s", msg)
		}
	}
	for u, want := range map[string]string{
		"redis://user:secret@host:6379":    "redis://***@host:6379",
		"redis://u:a,b@c@host:6379/0":      "redis://***@host:6379/0",
		"h1:7000,u:secret@h2:7001":         "h1:7000,***@h2:7001",
		"redis://localhost:6379/0":         "redis://localhost:6379/0",
		"rediss://:only-a-password@h:6380": "rediss://***@h:6380",
	} {
		if got := redisurl.Redact(u); got != want {
			t.Errorf("Redact(%q) = %q, want %q", u, got, want)
		}
	}
}
