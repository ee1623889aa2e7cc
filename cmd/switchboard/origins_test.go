package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestAllowedOriginsConfig(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SWITCHBOARD_ALLOWED_ORIGINS" {
				return v
			}
			return ""
		}
	}
	c, err := parseConfig([]string{"switchboard"}, env(" https://Agents.Example.com , http://desk.example.net:8080,"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://agents.example.com", "http://desk.example.net:8080"}; !slices.Equal(c.agents.allowedOrigins, want) {
		t.Fatalf("allowed origins %q, want %q", c.agents.allowedOrigins, want)
	}
	c, err = parseConfig([]string{"switchboard", "-allowed-origins", "https://a.example"}, env(""), io.Discard)
	if err != nil || !slices.Equal(c.agents.allowedOrigins, []string{"https://a.example"}) {
		t.Fatalf("flag: %q, %v", c.agents.allowedOrigins, err)
	}
	for _, bad := range []string{"agents.example.com", "https://a.example/softphone", "ftp://a.example", "https://a.example,*"} {
		_, err := parseConfig([]string{"switchboard"}, env(bad), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_ALLOWED_ORIGINS") {
			t.Errorf("%q: %v, want an error naming SWITCHBOARD_ALLOWED_ORIGINS", bad, err)
		}
	}
}
