package agents

import (
	"testing"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
)

// Every test's hubs, sessions, peers and softphones must be gone when the package's tests end.
// The hub's tests run against a real Redis.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

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
