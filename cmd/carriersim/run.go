package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
)

// run parses the flags (each may also come from CARRIERSIM_<FLAG> in the environment),
// starts the simulator and serves it until ctx ends or SIGINT/SIGTERM arrives; a second
// signal kills the process at once.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var (
		cfg       sim.Config
		f         sim.Faults
		addr      string
		publicURL string
		key       string
		logLevel  slog.Level
	)
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&publicURL, "public-url", "", "base URL Switchboard reaches the simulator at, printed as its api_url (default http://<addr>)")
	fs.StringVar(&cfg.AccountSID, "account-sid", "", "Twilio AccountSid (generated when empty)")
	fs.StringVar(&cfg.AuthToken, "auth-token", "", "Twilio auth token (generated when empty)")
	fs.StringVar(&cfg.TelnyxAPIKey, "telnyx-api-key", "", "Telnyx API key (generated when empty)")
	fs.StringVar(&cfg.ConnectionID, "connection-id", "", "Telnyx connection_id (generated when empty)")
	fs.StringVar(&key, "telnyx-private-key", "", "base64 Ed25519 seed (32 bytes) or private key (64 bytes) signing Telnyx webhooks (generated when empty)")
	fs.StringVar(&cfg.TwilioVoiceURL, "voice-url", "", "Switchboard's Twilio voice webhook, for inbound Twilio calls")
	fs.StringVar(&cfg.TwilioStatusURL, "status-url", "", "Switchboard's Twilio status callback URL, for inbound Twilio calls")
	fs.StringVar(&cfg.TelnyxWebhookURL, "telnyx-webhook-url", "", "Switchboard's Telnyx webhook URL: inbound calls, and dials without webhook_url")
	fs.DurationVar(&cfg.Ring, "ring", time.Second, "how long calls ring before they are answered, rejected or busy")
	fs.DurationVar(&cfg.RingTimeout, "ring-timeout", 0, "cap on how long an unanswered call rings (0: the call's own timeout)")
	fs.DurationVar(&cfg.HangupAfter, "hangup-after", 0, "the far end hangs up answered calls after this long (0: never)")
	fs.Float64Var(&cfg.ToneHz, "tone", 1000, "frequency in Hz of the tone sent on media streams")
	fs.BoolVar(&cfg.Echo, "echo", false, "echo the audio received instead of sending the tone")
	fs.Float64Var(&cfg.WatchHz, "watch", 0, "report each call's gaps in a tone at this frequency in Hz in what it receives (tone_gaps; 0: off)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random source behind fault rates")
	fs.Float64Var(&f.RESTErrorRate, "rest-error-rate", 0, "fault: share (0..1) of carrier API requests answered with -rest-error-status")
	fs.IntVar(&f.RESTErrorStatus, "rest-error-status", 503, "fault: HTTP status of injected REST errors")
	fs.DurationVar(&f.RESTLatency, "rest-latency", 0, "fault: delay before every carrier API answer")
	fs.BoolVar(&f.RESTHang, "rest-hang", false, "fault: carrier API requests never answer")
	fs.Float64Var(&f.CallbackDropRate, "callback-drop-rate", 0, "fault: share (0..1) of callbacks never sent while calls go on")
	fs.DurationVar(&f.CallbackDelay, "callback-delay", 0, "fault: hold every callback this long")
	fs.Float64Var(&f.DuplicateRate, "duplicate-rate", 0, "fault: share (0..1) of callbacks sent twice")
	fs.BoolVar(&f.Reorder, "reorder", false, "fault: swap each call's callbacks in pairs")
	fs.DurationVar(&f.ReorderHold, "reorder-hold", time.Second, "fault: longest a callback is held back by -reorder")
	fs.BoolVar(&f.Outage, "outage", false, "fault: total outage: carrier APIs answer 503, nothing is sent")
	fs.DurationVar(&f.OutageOn, "outage-on", 0, "fault: intermittent outage, out for this long ...")
	fs.DurationVar(&f.OutageOff, "outage-off", 0, "fault: ... then well for this long, repeating")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")

	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		name := "CARRIERSIM_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := fl.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if key != "" {
		b, err := base64.StdEncoding.DecodeString(key)
		switch {
		case err != nil:
			return fmt.Errorf("-telnyx-private-key: %w", err)
		case len(b) == ed25519.SeedSize:
			cfg.TelnyxPrivateKey = ed25519.NewKeyFromSeed(b)
		case len(b) == ed25519.PrivateKeySize:
			cfg.TelnyxPrivateKey = ed25519.PrivateKey(b)
		default:
			return fmt.Errorf("-telnyx-private-key has %d bytes, want 32 or 64", len(b))
		}
	}
	cfg.Faults = f
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))

	c, err := sim.New(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }() // the process is ending; a simulator that closes badly is gone all the same
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "carriersim listening on http://%s\n", ln.Addr())
	fmt.Fprintf(&b, "twilio: api_url=%s account_sid=%s auth_token=%s\n", publicURL, c.AccountSID(), c.AuthToken())
	fmt.Fprintf(&b, "telnyx: api_url=%s api_key=%s connection_id=%s public_key=%s\n",
		publicURL, c.TelnyxAPIKey(), c.ConnectionID(), c.PublicKeyBase64())
	_, _ = io.WriteString(stdout, b.String()) // the banner is advice; a closed stdout must not stop the simulator

	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // from here a second signal kills the process
	cfg.Logger.Info("shutting down")
	// The carrier first: that ends calls and releases requests held by -rest-hang, so the
	// server's shutdown has nothing left to wait for.
	_ = c.Close() // as above, and the server shuts down next whatever it says
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
