package agents

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// TestMonitorFollowsItsCall: a supervisor on A listens to a call whose media B holds (through
// the relay; ann is on A). B dies, or stops gracefully; A claims the call and the carrier
// streams it to A. The monitoring follows the call on the same PeerConnection: the supervisor
// hears the caller and ann again, is never told the monitoring ended, and can still change
// mode.
func TestMonitorFollowsItsCall(t *testing.T) {
	for _, how := range []string{"kill", "graceful stop"} {
		t.Run(how, func(t *testing.T) {
			ns := redistest.Namespace(t)
			a := newTestHub(t, ns)
			b := newTestHub(t, ns)
			ann, id, old := callOnAOverB(t, a, b)
			sup := dialMonitor(t, a, "sup-token", id, MonitorListen)
			sup.expect(t, "monitor", MonitorListen)
			sup.negotiate(t)
			hearsBoth := func(what string) {
				t.Helper()
				redistest.Eventually(t, 10*time.Second, what, func() bool {
					rec := last(sup.agent.Recording(), 1600)
					return len(rec) == 1600 && power(rec, callerHz) > heardPower && power(rec, annHz) > heardPower
				})
			}
			hearsBoth("the supervisor hears both through the relay")

			start := time.Now()
			handedOver := make(chan struct{})
			if how == "kill" {
				close(handedOver)
				old.cut()
				b.kill()
			} else {
				a.carriers.mu.Lock()
				a.carriers.onRepoint = func(string, string) { go old.hangUp() } // the re-point replaces B's stream
				a.carriers.mu.Unlock()
				go func() {
					defer close(handedOver)
					b.Handover(context.Background())
				}()
			}
			redistest.Eventually(t, 5*time.Second, "A re-points the call", a.carriers.has(&a.carriers.repointed, id))
			stream := startStream(t, a.Hub, id, callerHz)
			hearEachOther(t, stream, ann, callerHz, annHz, "the caller and ann on A")
			sup.agent.ResetRecording()
			hearsBoth("the supervisor hears both on A")
			t.Logf("%s: the supervisor hears both again %v after it", how, time.Since(start).Round(time.Millisecond))
			<-handedOver

			sup.mu.Lock()
			for _, m := range sup.msgs {
				if m["type"] == signal.TypeEnded || m["type"] == signal.TypeError {
					t.Errorf("the supervisor was told %v", m)
				}
			}
			sup.mu.Unlock()
			if a.held(id) == nil {
				t.Fatal("A does not hold the call")
			}
			// Still monitoring, and on A: a mode change works there.
			sup.send(t, map[string]any{"type": "mode", "mode": MonitorBarge})
			sup.expect(t, "monitor", MonitorBarge)
			redistest.Eventually(t, 5*time.Second, "the caller hears the supervisor barge in", func() bool {
				return power(stream.recent(1600), supHz) > heardPower
			})
		})
	}
}
