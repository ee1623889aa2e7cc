package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A few calls for a second: the command runs end to end, reports every section, and leaves
// nothing running behind it.
func TestRunSmallLoad(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-calls", "3", "-duration", "1s", "-ramp", "100ms"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"agents connected: 3/3", "calls bridged: 3 (first frame reached the agent in 3)",
		"carrier -> agent:", "agent -> carrier:", "added latency through the server", "RTP packet on the wire to the server", "CPU:", "memory:", "load generator", "goal",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	f := make([]byte, 160)
	for _, seq := range []int{0, 1, 49, 1 << 20} {
		stamp(f, seq)
		if got, ok := unstamp(f); !ok || got != seq {
			t.Errorf("stamp %d read back as %d, %v", seq, got, ok)
		}
	}
	if _, ok := unstamp(make([]byte, 160)); ok {
		t.Error("an unstamped frame has a stamp")
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-calls", "0"}, &out); err == nil {
		t.Error("-calls 0 accepted")
	}
}
