package agents

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
)

// Every test's hubs, sessions, peers and softphones must be gone when the package's tests end.
// The hub's tests run against a real Redis.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// waitUntil polls cond until it holds or the timeout passes: conditions on live media are
// waited for with a deadline, never a fixed sleep.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newTestEngine(t *testing.T, opts webrtc.EngineOptions) *webrtc.Engine {
	t.Helper()
	opts.LoopbackOnly = true
	e, err := webrtc.NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return e
}
