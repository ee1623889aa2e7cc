package redisurl

import (
	"strings"
	"testing"
)

func TestNewClientParsesRedisURL(t *testing.T) {
	for _, bad := range []string{"localhost", "redis//x", "a:1,b"} {
		if _, err := NewClient(bad); err == nil {
			t.Errorf("NewClient(%q) accepted a bad REDIS_URL", bad)
		}
	}
	for _, good := range []string{"redis://localhost:6379/0", "rediss://u:p@h:6380", "h1:7000,h2:7001,h3:7002", "h:6379"} {
		c, err := NewClient(good)
		if err != nil {
			t.Errorf("NewClient(%q): %v", good, err)
			continue
		}
		c.Close()
	}
	if got := Redact("redis://user:secret@host:6379"); got != "redis://***@host:6379" {
		t.Errorf("Redact leaked: %s", got)
	}
}

func TestFailoverURLIsRecognisedAndRedacted(t *testing.T) {
	u := "redis://sentinel-user:s3cret@s1:26379?master_name=mymaster&addr=s2:26379&password=primary-pass"
	if !IsFailover(u) || IsFailover("redis://localhost:6379/0") {
		t.Fatal("IsFailover does not tell a Sentinel URL from a single node")
	}
	c, err := newFailoverClient(u)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	got := Redact(u)
	if strings.Contains(got, "s3cret") || strings.Contains(got, "primary-pass") || !strings.Contains(got, "master_name=mymaster") {
		t.Errorf("Redact(%q) = %q", u, got)
	}
}
