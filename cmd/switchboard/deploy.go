package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/store"
)

// deployConfig is the configuration a production deployment adds to the demo's: how many
// Redis replicas must hold an event before it is acknowledged, and the ICE servers (STUN,
// TURN) the softphone page is told to use.
type deployConfig struct {
	minReplicas int             // as store.Options.MinReplicas
	iceServers  json.RawMessage // a JSON array of RTCIceServer; nil: none
}

// deployFlags registers the deployment flags on fs; parse validates them after fs.Parse.
type deployFlags struct{ minReplicas, iceServers string }

func addDeployFlags(fs *flag.FlagSet, env func(name, def string) string) *deployFlags {
	d := &deployFlags{}
	fs.StringVar(&d.minReplicas, "redis-min-replicas", env("SWITCHBOARD_REDIS_MIN_REPLICAS", "auto"),
		"Redis replicas that must hold an event before it is acknowledged (SWITCHBOARD_REDIS_MIN_REPLICAS); auto: 1 on Sentinel, 0 otherwise")
	fs.StringVar(&d.iceServers, "ice-servers", env("SWITCHBOARD_ICE_SERVERS", ""),
		`STUN/TURN servers for the softphone, a JSON array of RTCIceServer, e.g. [{"urls":"turn:turn.example.com:3478","username":"u","credential":"p"}] (SWITCHBOARD_ICE_SERVERS)`)
	return d
}

func (d *deployFlags) parse() (deployConfig, error) {
	var c deployConfig
	switch n, err := strconv.Atoi(d.minReplicas); {
	case d.minReplicas == "auto":
	case err != nil || n < 0:
		return c, fmt.Errorf("SWITCHBOARD_REDIS_MIN_REPLICAS %q: want auto, 0, or a number of replicas", d.minReplicas)
	case n == 0:
		c.minReplicas = store.NoReplicas
	default:
		c.minReplicas = n
	}
	if strings.TrimSpace(d.iceServers) == "" {
		return c, nil
	}
	var servers []struct {
		URLs       any    `json:"urls"`
		Username   string `json:"username"`
		Credential string `json:"credential"`
	}
	if err := json.Unmarshal([]byte(d.iceServers), &servers); err != nil {
		return c, fmt.Errorf(`SWITCHBOARD_ICE_SERVERS: want a JSON array such as [{"urls":"turn:turn.example.com:3478","username":"u","credential":"p"}]: %w`, err)
	}
	for i, s := range servers {
		if err := checkICEURLs(s.URLs); err != nil {
			return c, fmt.Errorf("SWITCHBOARD_ICE_SERVERS[%d]: %w", i, err)
		}
	}
	c.iceServers = json.RawMessage(d.iceServers)
	return c, nil
}

// checkICEURLs accepts what RTCIceServer.urls accepts: one URL or a list, each stun:, stuns:,
// turn: or turns:.
func checkICEURLs(v any) error {
	var urls []string
	switch v := v.(type) {
	case string:
		urls = []string{v}
	case []any:
		for _, u := range v {
			s, ok := u.(string)
			if !ok {
				return errors.New("urls must be strings")
			}
			urls = append(urls, s)
		}
	}
	if len(urls) == 0 {
		return errors.New(`"urls" is missing`)
	}
	for _, u := range urls {
		scheme, _, _ := strings.Cut(u, ":")
		switch scheme {
		case "stun", "stuns", "turn", "turns":
		default:
			return fmt.Errorf("%q: want a stun:, stuns:, turn: or turns: URL", u)
		}
	}
	return nil
}

// checkSharedToken refuses a configuration that breaks several instances. A generated admin
// token differs per instance and per restart, and the instances key their media relay and
// stream tokens with it: with a shared Redis (the sign of several instances, or of one that
// restarts) it must be set.
func checkSharedToken(cfg config) error {
	if cfg.redisURL != "" && cfg.adminToken == "" {
		return errors.New("REDIS_URL is set but SWITCHBOARD_ADMIN_TOKEN is not: set the same long random token on every instance " +
			"(e.g. openssl rand -hex 24); a generated one differs per instance and per restart, and breaks the media relay between instances")
	}
	return nil
}

// warnPlainHTTP warns about a public URL that breaks browsers and carriers.
func warnPlainHTTP(public string, log *slog.Logger) {
	if !strings.HasPrefix(public, "https://") && !isLoopback(public) {
		log.Warn("SWITCHBOARD_PUBLIC_URL is not https: browsers give the microphone only to an HTTPS page, the softphone then needs wss://, and Twilio accepts only wss:// media stream URLs; put a TLS proxy in front and set SWITCHBOARD_PUBLIC_URL=https://... (see docs/deploy.md)",
			"public_url", public)
	}
}
