package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/sim"
)

// demoCarriers are the simulated carriers of the one-command demo, each serving on its own
// loopback port, configured in the registry as primary (twilio kind) and secondary (telnyx
// kind) exactly as an admin would configure real ones.
type demoCarriers struct {
	primary, secondary *sim.Carrier
	servers            []*http.Server
	urls               []string
}

const (
	demoPrimary   = "sim-primary"
	demoSecondary = "sim-secondary"
)

// startDemoCarriers starts both simulators and stores their configuration. public is our own
// public URL, which the simulators call for inbound calls.
func startDemoCarriers(ctx context.Context, reg *carrier.Registry, public string, log *slog.Logger) (*demoCarriers, error) {
	d := &demoCarriers{}
	var err error
	if d.primary, err = sim.New(sim.Config{
		TwilioVoiceURL: public + "/webhooks/" + demoPrimary + "/voice", TwilioStatusURL: public + "/webhooks/" + demoPrimary + "/status",
		Logger: log.With("sim", demoPrimary),
	}); err != nil {
		return nil, err
	}
	if d.secondary, err = sim.New(sim.Config{
		TelnyxWebhookURL: public + "/webhooks/" + demoSecondary + "/events",
		Logger:           log.With("sim", demoSecondary),
	}); err != nil {
		_ = d.primary.Close() // a close error of a simulator on the way out helps nobody
		return nil, err
	}
	urls := make([]string, 2)
	for i, c := range []*sim.Carrier{d.primary, d.secondary} {
		srv, url, err := c.ServeLoopback(slog.NewLogLogger(log.Handler(), slog.LevelDebug))
		if err != nil {
			d.close()
			return nil, err
		}
		d.servers = append(d.servers, srv)
		urls[i] = url
	}
	configs := []carrier.Config{
		{ID: demoPrimary, Kind: carrier.Twilio, APIURL: urls[0], AccountSID: d.primary.AccountSID(), AuthToken: d.primary.AuthToken(),
			From: "+15550100", Priority: 0, Enabled: true},
		{ID: demoSecondary, Kind: carrier.Telnyx, APIURL: urls[1], APIKey: d.secondary.TelnyxAPIKey(), ConnectionID: d.secondary.ConnectionID(),
			PublicKey: d.secondary.PublicKeyBase64(), From: "+15550100", Priority: 1, Enabled: true},
	}
	for _, cfg := range configs {
		if _, err := reg.Put(ctx, cfg, "demo"); err != nil {
			d.close()
			return nil, fmt.Errorf("configure demo carrier %s: %w", cfg.ID, err)
		}
	}
	d.urls = urls
	return d, nil
}

func (d *demoCarriers) close() {
	for _, s := range d.servers {
		_ = s.Close() // as above
	}
	for _, c := range []*sim.Carrier{d.primary, d.secondary} {
		if c != nil {
			_ = c.Close() // as above
		}
	}
}

// describe tells a newcomer what is running and how to make it ring.
func (d *demoCarriers) describe(w io.Writer) {
	_, _ = fmt.Fprintf(w, "  demo carriers (simulated): %s (twilio kind, primary) at %s, %s (telnyx kind, secondary) at %s\n",
		demoPrimary, d.urls[0], demoSecondary, d.urls[1]) // the banner is advice; a closed stdout must not stop the server
	_, _ = fmt.Fprintf(w, "  make a call come in:  curl -X POST %s/sim/inbound -d '{\"kind\":\"twilio\",\"from\":\"+14155550100\"}'\n", d.urls[0]) // the banner is advice; a closed stdout must not stop the server
}
