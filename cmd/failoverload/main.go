// Command failoverload measures failover under load: it starts a Redis, two simulated
// carriers and a Switchboard (the built binary), places calls at a steady rate through
// POST /api/calls, switches on a total outage of the primary carrier partway through, and
// prints how fast Switchboard stopped using the primary, how many calls failed, and what a
// failed-over call paid in extra setup latency.
//
// Two outages are measured, each on a fresh stack: "error" (every REST request to the
// primary answers 503 and it sends no callbacks) and "hang" (requests to the primary never
// answer, and it sends no callbacks).
//
// Run it from the repository root (it builds ./cmd/switchboard unless -bin is given):
//
//	go run ./cmd/failoverload -rate 50 -duration 10s -outage-at 4s
//
// It needs redis-server on PATH. All traffic stays on 127.0.0.1 and the run stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/switchboard/switchboard/cmd/internal/rig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "failoverload:", err)
		os.Exit(1)
	}
}

type options struct {
	bin            string
	rate           int
	duration       time.Duration
	outageAt       time.Duration
	modes          []string
	requestTimeout time.Duration
	ring           time.Duration
	hangupAfter    time.Duration
	logs           bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("failoverload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var mode string
	fs.StringVar(&o.bin, "bin", "", "switchboard binary to run (default: go build ./cmd/switchboard into a temporary directory)")
	fs.IntVar(&o.rate, "rate", 50, "calls placed per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long calls are placed")
	fs.DurationVar(&o.outageAt, "outage-at", 4*time.Second, "when the primary's total outage starts, from the first call")
	fs.StringVar(&mode, "mode", "both", "outage to measure: error (REST 503), hang (REST never answers), or both")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 2*time.Second, "the primary's request_timeout (the default)")
	fs.DurationVar(&o.ring, "ring", 200*time.Millisecond, "how long the simulated callee rings before answering")
	fs.DurationVar(&o.hangupAfter, "hangup-after", time.Second, "how long an answered simulated call lasts")
	fs.BoolVar(&o.logs, "logs", false, "show Switchboard's warnings on stderr")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch mode {
	case "both":
		o.modes = []string{"error", "hang"}
	case "error", "hang":
		o.modes = []string{mode}
	default:
		return fmt.Errorf("-mode %q: want error, hang or both", mode)
	}
	if o.rate < 1 || o.rate > 1000 || o.duration <= 0 || o.outageAt <= 0 || o.outageAt >= o.duration {
		return errors.New("want 1 <= -rate <= 1000 and 0 < -outage-at < -duration")
	}
	if o.bin == "" {
		dir, err := os.MkdirTemp("", "failoverload-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }() // a temporary directory left behind is harmless
		if o.bin, err = rig.BuildSwitchboard(ctx, dir, stderr); err != nil {
			return err
		}
	}
	_, _ = fmt.Fprintf(stdout, "failoverload: %d calls/s for %v, total outage of the primary at %v; primary request_timeout %v; default breaker settings\n",
		o.rate, o.duration, o.outageAt, o.requestTimeout) // the header; the report below returns its write error
	for _, m := range o.modes {
		r, err := measure(ctx, o, m, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := r.print(stdout); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	return nil
}
