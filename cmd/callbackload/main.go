// Command callbackload drives signed Twilio status callbacks (realistic call lifecycles, with
// duplicates and reordering) over keep-alive against a Switchboard server, and the same load
// against a bare Echo handler that only answers 204, and prints throughput, acknowledgement
// latency, errors and the TCP connections used.
//
// By default it starts everything itself on loopback: a redis-server (durable: appendfsync
// always), a Switchboard built from this checkout, and the bare server (this binary again).
// See docs/performance.md for the figures it produced.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "callbackload:", err)
		os.Exit(1)
	}
}
