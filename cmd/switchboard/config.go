package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
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
	// stopDelay is how long the first signal keeps everything served, /readyz failing, before
	// the drain begins: the time a load balancer needs to take the instance out.
	stopDelay time.Duration
	debugAddr string // pprof; empty: off
	namespace string
	agents    agentConfig
	deploy    deployConfig
	recording recordingConfig
	// reconcileAfter is how long a call may go without any event before its carrier's REST
	// API is asked how it stands.
	reconcileAfter time.Duration
}

// agentConfig is the agent side's configuration: routing times and the WebRTC media ports.
type agentConfig struct {
	ringTimeout, queueTimeout, wrapUp time.Duration
	udpPort                           int      // 0: an ephemeral port per agent
	publicIPs                         []string // the host's public addresses behind a 1:1 NAT
	allowedOrigins                    []string // browser origins besides the public URL's
	dispositions                      call.Dispositions
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
	var level, retention, drain, stopDelay, ring, queue, wrapUp, udpPort, publicIPs, origins, reconcileAfter string
	fs.StringVar(&c.addr, "addr", env("SWITCHBOARD_ADDR", ":8080"), "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.publicURL, "public-url", env("SWITCHBOARD_PUBLIC_URL", ""),
		"base URL carriers use to reach us (SWITCHBOARD_PUBLIC_URL); default http://localhost:<port>")
	fs.StringVar(&c.redisURL, "redis-url", env("REDIS_URL", ""),
		"redis:// URL, or host:port,host:port,... for Redis Cluster (REDIS_URL); empty: embedded Redis")
	fs.StringVar(&level, "log-level", env("SWITCHBOARD_LOG_LEVEL", "info"), "debug, info, warn or error (SWITCHBOARD_LOG_LEVEL)")
	deploy := addDeployFlags(fs, env)    // Redis replicas to wait for, ICE servers: deploy.go
	record := addRecordingFlags(fs, env) // recordings.go
	fs.StringVar(&retention, "retention", env("SWITCHBOARD_RETENTION", "24h"),
		"how long finished calls stay readable (SWITCHBOARD_RETENTION)")
	fs.StringVar(&drain, "drain-timeout", env("SWITCHBOARD_DRAIN_TIMEOUT", "30s"),
		"on SIGTERM, how long live requests and calls may take to finish (SWITCHBOARD_DRAIN_TIMEOUT)")
	fs.StringVar(&stopDelay, "stop-delay", env("SWITCHBOARD_STOP_DELAY", "0s"),
		"on SIGTERM, how long to keep serving with /readyz failing before draining, for a load balancer to notice (SWITCHBOARD_STOP_DELAY)")
	fs.StringVar(&c.debugAddr, "debug-addr", env("SWITCHBOARD_DEBUG_ADDR", ""),
		"serve Go's pprof profiles on this address, e.g. 127.0.0.1:6060 (SWITCHBOARD_DEBUG_ADDR); empty: off")
	fs.StringVar(&c.namespace, "redis-namespace", env("SWITCHBOARD_REDIS_NAMESPACE", "sb"),
		"prefix of every Redis key, so several deployments can share one Redis (SWITCHBOARD_REDIS_NAMESPACE)")
	fs.StringVar(&ring, "ring-timeout", env("SWITCHBOARD_RING_TIMEOUT", "15s"),
		"how long an inbound call rings for one agent before it goes to the next (SWITCHBOARD_RING_TIMEOUT)")
	fs.StringVar(&queue, "queue-timeout", env("SWITCHBOARD_QUEUE_TIMEOUT", "60s"),
		"how long an inbound call waits for an agent, hearing the hold tone (SWITCHBOARD_QUEUE_TIMEOUT)")
	fs.StringVar(&wrapUp, "wrap-up", env("SWITCHBOARD_WRAP_UP", "10s"),
		"how long an agent rests after a call before the next one (SWITCHBOARD_WRAP_UP)")
	fs.StringVar(&udpPort, "webrtc-udp-port", env("SWITCHBOARD_WEBRTC_UDP_PORT", "0"),
		"one UDP port for every agent's audio; 0: an ephemeral port each (SWITCHBOARD_WEBRTC_UDP_PORT)")
	fs.StringVar(&publicIPs, "webrtc-public-ips", env("SWITCHBOARD_WEBRTC_PUBLIC_IPS", ""),
		"comma-separated public IPs to announce for agent audio behind a 1:1 NAT (SWITCHBOARD_WEBRTC_PUBLIC_IPS)")
	fs.StringVar(&origins, "allowed-origins", env("SWITCHBOARD_ALLOWED_ORIGINS", ""),
		"comma-separated browser origins, besides the public URL's, whose pages may open the softphone socket (SWITCHBOARD_ALLOWED_ORIGINS)")
	fs.StringVar(&reconcileAfter, "reconcile-after", env("SWITCHBOARD_RECONCILE_AFTER", "30s"),
		"how long a call may go without any event before its carrier's API is asked how it stands (SWITCHBOARD_RECONCILE_AFTER)")
	dispositions := fs.String("dispositions", env("SWITCHBOARD_DISPOSITIONS", call.DefaultDispositions),
		"comma-separated dispositions an agent closes a call with, in the softphone's order (SWITCHBOARD_DISPOSITIONS)")
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
	if c.deploy, err = deploy.parse(); err != nil {
		return config{}, err
	}
	if c.recording, err = record.parse(); err != nil {
		return config{}, err
	}
	if c.retention, err = positiveDuration("SWITCHBOARD_RETENTION", retention); err != nil {
		return config{}, err
	}
	if c.drainTimeout, err = positiveDuration("SWITCHBOARD_DRAIN_TIMEOUT", drain); err != nil {
		return config{}, err
	}
	if c.stopDelay, err = time.ParseDuration(stopDelay); err != nil || c.stopDelay < 0 {
		return config{}, fmt.Errorf("SWITCHBOARD_STOP_DELAY %q: want a duration of 0 or more, e.g. 5s", stopDelay)
	}
	if c.debugAddr != "" {
		if _, _, err := net.SplitHostPort(c.debugAddr); err != nil {
			return config{}, fmt.Errorf("SWITCHBOARD_DEBUG_ADDR %q: want host:port, e.g. 127.0.0.1:6060", c.debugAddr)
		}
	}
	for _, d := range []struct {
		name, v string
		to      *time.Duration
	}{
		{"SWITCHBOARD_RING_TIMEOUT", ring, &c.agents.ringTimeout},
		{"SWITCHBOARD_QUEUE_TIMEOUT", queue, &c.agents.queueTimeout},
		{"SWITCHBOARD_WRAP_UP", wrapUp, &c.agents.wrapUp},
		{"SWITCHBOARD_RECONCILE_AFTER", reconcileAfter, &c.reconcileAfter},
	} {
		if *d.to, err = positiveDuration(d.name, d.v); err != nil {
			return config{}, err
		}
	}
	if c.agents.udpPort, err = strconv.Atoi(udpPort); err != nil || c.agents.udpPort < 0 || c.agents.udpPort > 65535 {
		return config{}, fmt.Errorf("SWITCHBOARD_WEBRTC_UDP_PORT %q: want a port number, or 0", udpPort)
	}
	for _, ip := range strings.Split(publicIPs, ",") {
		if ip = strings.TrimSpace(ip); ip == "" {
			continue
		}
		if net.ParseIP(ip) == nil {
			return config{}, fmt.Errorf("SWITCHBOARD_WEBRTC_PUBLIC_IPS: %q is not an IP address", ip)
		}
		c.agents.publicIPs = append(c.agents.publicIPs, ip)
	}
	if c.agents.allowedOrigins, err = parseAllowedOrigins(origins); err != nil {
		return config{}, err
	}
	if c.agents.dispositions, err = call.ParseDispositions(*dispositions); err != nil {
		return config{}, fmt.Errorf("SWITCHBOARD_DISPOSITIONS: %w", err)
	}
	if c.namespace == "" || strings.ContainsAny(c.namespace, "{}: ") {
		return config{}, fmt.Errorf("SWITCHBOARD_REDIS_NAMESPACE %q: want a short name without {, }, : or spaces", c.namespace)
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

// wrapUps is how calls are wrapped up, for the API and the softphones.
func (c config) wrapUps() api.WrapUps {
	return api.WrapUps{Dispositions: c.agents.dispositions, Window: c.agents.wrapUp + call.WrapUpGrace}
}
