// Command switchboard is the Switchboard server: carrier webhooks and media, the calls and
// admin APIs, and the agents' softphone. Configuration is by environment (see the README).
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}
