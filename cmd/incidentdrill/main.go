// Command incidentdrill replays the afternoon Switchboard was built after, compressed in
// time, against real Switchboard processes, and fails unless calls kept flowing.
//
// On 5 November 2018 a platform's primary carrier could not deliver its callbacks, on and
// off from 14:47 to 18:04 UTC, 109 minutes in all. The drill runs, on one machine, a durable
// redis-server, two Switchboard instances built from this checkout behind a small
// round-robin proxy, and two simulated carriers (carrier/sim); it places calls at a steady
// rate through the calls API and plays the primary's bad afternoon at one minute per second:
// windows where its callbacks are dropped, where its API answers 503, where it is slow. On
// top it restarts one instance, kills Redis for a while, and multiplies the callbacks by ten
// for a few seconds. Then it checks, from the carriers' records and the store, that the calls
// a healthy carrier could carry completed, that no acknowledged event was lost, that nothing
// answered a 3xx, and that every window was routed around in time; it prints a report and
// exits non-zero on a missed goal.
//
//	go run ./cmd/incidentdrill               # the full afternoon, about 4 minutes
//	go run ./cmd/incidentdrill -mode short   # one window of each kind, about a minute (CI runs it)
//
// It needs redis-server on PATH and Go to build the server. docs/drill.md explains the
// timeline, the goals and how to read the report.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "incidentdrill:", err)
		os.Exit(1)
	}
}
