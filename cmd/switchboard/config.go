package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// config is everything the server reads at start-up. Environment variables are the public
// contract; flags mirror the ones that are not secrets (a token on a command line is visible
// to every user of the machine through ps).
type config struct {
	addr         string
	publicURL    string // no trailing slash
	redisURL     string
	adminToken   string
	logLevel     slog.Level
	retention    time.Duration
	drainTimeout time.Duration
	debugAddr    string // pprof; empty: off
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	var level, retention, drain string
	fs.StringVar(&c.addr, "addr", env("SWITCHBOARD_ADDR", ":8080"), "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.publicURL, "public-url", env("SWITCHBOARD_PUBLIC_URL", ""),
		"base URL carriers use to reach us (SWITCHBOARD_PUBLIC_URL); default http://localhost:<port>")
	fs.StringVar(&c.redisURL, "redis-url", env("REDIS_URL", ""),
		"redis:// URL, or host:port,host:port,... for Redis Cluster (REDIS_URL); empty: embedded Redis")
	fs.StringVar(&level, "log-level", env("SWITCHBOARD_LOG_LEVEL", "info"), "debug, info, warn or error (SWITCHBOARD_LOG_LEVEL)")
	fs.StringVar(&retention, "retention", env("SWITCHBOARD_RETENTION", "24h"),
		"how long finished calls stay readable (SWITCHBOARD_RETENTION)")
	fs.StringVar(&drain, "drain-timeout", env("SWITCHBOARD_DRAIN_TIMEOUT", "30s"),
		"on SIGTERM, how long live requests and calls may take to finish (SWITCHBOARD_DRAIN_TIMEOUT)")
	fs.StringVar(&c.debugAddr, "debug-addr", env("SWITCHBOARD_DEBUG_ADDR", ""),
		"serve Go's pprof profiles on this address, e.g. 127.0.0.1:6060 (SWITCHBOARD_DEBUG_ADDR); empty: off")
	if err := fs.Parse(args[1:]); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.adminToken = getenv("SWITCHBOARD_ADMIN_TOKEN")

	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return config{}, fmt.Errorf("SWITCHBOARD_ADDR %q: want host:port, e.g. :8080", c.addr)
	}
	if c.publicURL != "" {
		u, err := url.Parse(c.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return config{}, fmt.Errorf("SWITCHBOARD_PUBLIC_URL %q: want an absolute http(s) URL with no query, e.g. https://voice.example.com", c.publicURL)
		}
		c.publicURL = strings.TrimRight(c.publicURL, "/")
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("SWITCHBOARD_LOG_LEVEL %q: want debug, info, warn or error", level)
	}
	var err error
	if c.retention, err = positiveDuration("SWITCHBOARD_RETENTION", retention); err != nil {
		return config{}, err
	}
	if c.drainTimeout, err = positiveDuration("SWITCHBOARD_DRAIN_TIMEOUT", drain); err != nil {
		return config{}, err
	}
	if c.debugAddr != "" {
		if _, _, err := net.SplitHostPort(c.debugAddr); err != nil {
			return config{}, fmt.Errorf("SWITCHBOARD_DEBUG_ADDR %q: want host:port, e.g. 127.0.0.1:6060", c.debugAddr)
		}
	}
	if c.adminToken != "" && len(c.adminToken) < 16 {
		return config{}, errors.New("SWITCHBOARD_ADMIN_TOKEN is shorter than 16 characters; use a long random token, or leave it unset to have one generated")
	}
	return c, nil
}

func positiveDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive duration such as 30s or 24h", name, v)
	}
	return d, nil
}

// publicBase is where carriers reach us: the configured URL, or one built from the address we
// actually listen on.
func (c config) publicBase(listening net.Addr) string {
	if c.publicURL != "" {
		return c.publicURL
	}
	host, port, _ := net.SplitHostPort(listening.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
