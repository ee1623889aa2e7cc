package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A few calls for a second: the command runs end to end, reports every section, and leaves
// nothing running behind it.
// TestMain lets the test binary be the agents' process too, as the command binary is.
func TestMain(m *testing.M) {
	if os.Getenv(serveAgentsEnv) != "" {
		if err := serveAgents(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRunSmallLoad(t *testing.T) {
	for _, mode := range []string{"-agents-process=false", "-agents-process=true"} {
		t.Run(mode, func(t *testing.T) { runSmallLoad(t, mode) })
	}
}

func runSmallLoad(t *testing.T, mode string) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-calls", "3", "-duration", "1s", "-ramp", "100ms", mode}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "carrier -> agent: 1") || !strings.Contains(out.String(), "agent -> carrier: 1") {
		t.Errorf("no frames counted both ways:\n%s", out.String())
	}
	for _, want := range []string{
		"agents connected: 3/3", "calls bridged: 3 (first frame reached the agent in 3)",
		"carrier -> agent:", "agent -> carrier:", "added latency through the server", "the agent sends its RTP packet", "the simulated browser has it", "CPU (this process):", "memory (this process):", "goal",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	f := make([]byte, 160)
	for _, seq := range []int{0, 1, 49, 1 << 20} {
		at := time.Now().UnixNano() + int64(seq)
		stamp(f, seq, at)
		if got, gotAt, ok := unstamp(f); !ok || got != seq || gotAt != at {
			t.Errorf("stamp %d at %d read back as %d at %d, %v", seq, at, got, gotAt, ok)
		}
	}
	if _, _, ok := unstamp(make([]byte, 160)); ok {
		t.Error("an unstamped frame has a stamp")
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-calls", "0"}, &out); err == nil {
		t.Error("-calls 0 accepted")
	}
}
