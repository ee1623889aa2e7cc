package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestShortDrill runs the short drill end to end, as CI does: real redis-server, two
// Switchboard processes built from this checkout, the proxy, both simulated carriers, one
// window of each kind and every chaos switch. It fails on any missed goal.
func TestShortDrill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	start := time.Now()
	err := run(ctx, []string{"incidentdrill", "-mode", "short"}, &out, &progress)
	t.Logf("short drill took %v\n%s%s", time.Since(start).Round(time.Second), progress.String(), out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goals", "PASS  completed >= 99.9%", "PASS  acknowledged events lost = 0",
		"PASS  3xx answers = 0", "PASS  every outage window routed around in time"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
