// Command carriersim runs the simulated carrier (package carrier/sim) as its own process:
// Twilio's REST API and Telnyx Call Control on one listener, with the simulator's control
// API under /sim. See carrier/sim/README.md for the flags, the destination-number rule and
// the fault API.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "carriersim:", err)
		os.Exit(1)
	}
}
