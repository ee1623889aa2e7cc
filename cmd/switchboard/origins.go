package main

import (
	"fmt"
	"strings"

	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// parseAllowedOrigins reads SWITCHBOARD_ALLOWED_ORIGINS: a comma-separated list of browser
// origins (https://agents.example.com) whose pages may open the softphone socket, besides the
// public URL's own. Each must be an origin and nothing more, so a typo such as a trailing path
// is an error at start-up rather than a softphone that cannot connect.
func parseAllowedOrigins(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		o, err := signal.ParseOrigin(s)
		if err != nil {
			return nil, fmt.Errorf("SWITCHBOARD_ALLOWED_ORIGINS: %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}
