package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestShortDrill runs the short drill end to end, as CI does: real redis-server, two
// Switchboard processes built from this checkout, the proxies, both simulated carriers,
// agents, one window of each kind and every chaos switch. It fails on any missed goal.
//
// It runs the command as its own process, built without the race detector: the drill
// measures time (routing around within 1 s, callers who hang up after 3 s), and the race
// detector would slow the simulated carriers, the proxies and the agents' peers, which run
// in the drill's process, several times over, so the test would measure the instrumentation.
// The drill's concurrent parts are race-tested here on their own (proxy_test.go).
func TestShortDrill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "incidentdrill")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	start := time.Now()
	logs := t.TempDir()
	out, err := exec.CommandContext(ctx, bin, "-mode", "short", "-logs", logs).CombinedOutput()
	t.Logf("short drill took %v\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		logWarnings(t, logs)
		t.Fatalf("the short drill missed a goal or failed: %v", err)
	}
	for _, want := range []string{"PASS  completed >= 99.9%", "PASS  acknowledged events lost = 0",
		"PASS  3xx answers = 0", "PASS  stuck agents = 0", "PASS  every outage window routed around in time",
		"PASS  final states that disagree with the carrier = 0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// logWarnings shows the last warnings and errors each instance logged, so that a drill that
// missed a goal in CI can be read without running it again.
func logWarnings(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				lines = append(lines, l)
			}
		}
		lines = lines[max(0, len(lines)-60):]
		t.Logf("%s: last %d warnings and errors:\n%s", filepath.Base(f), len(lines), strings.Join(lines, "\n"))
	}
}
