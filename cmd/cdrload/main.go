// Command cdrload measures the call-detail record export: it fills a namespace with records
// (by storing whole calls, as carriers' events would), then downloads them through
// GET /api/admin/cdr served by this process, and prints how long the export took and how much
// the heap and the resident memory grew while it ran. The export writes each page of records
// as it reads it, so memory should stay flat whatever the number of records.
//
//	go run ./cmd/cdrload -records 100000
//
// By default it starts a redis-server from PATH on loopback and removes it at the end; -redis
// points it at another (a namespace of its own is filled, and left). The embedded Redis of the
// one-command demo is an in-process Go implementation, far slower at scripts and streams than
// redis-server, so it would measure the wrong thing. See docs/performance.md for the figures
// it produced.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cdrload:", err)
		os.Exit(1)
	}
}
