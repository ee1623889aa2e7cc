package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestDemoTakesCallsFromSimulatedCarriers runs the one-command demo (embedded Redis, no
// configuration) and makes each simulated carrier call in: the calls are verified, stored,
// answered with a media stream, and followed to their end.
func TestDemoTakesCallsFromSimulatedCarriers(t *testing.T) {
	s := start(t, map[string]string{"REDIS_URL": ""})
	var simURL, secondaryURL string
	redistest.Eventually(t, 15*time.Second, "the demo to say how to make a call come in", func() bool {
		for _, line := range s.printed() {
			if _, rest, ok := strings.Cut(line, "curl -X POST "); ok {
				simURL = strings.TrimSuffix(strings.Fields(rest)[0], "/sim/inbound")
			}
			if _, rest, ok := strings.Cut(line, "(telnyx kind, secondary) at "); ok {
				secondaryURL = strings.TrimSpace(rest)
			}
		}
		return simURL != "" && secondaryURL != ""
	})

	for _, tc := range []struct{ kind, url string }{{"twilio", simURL}, {"telnyx", secondaryURL}} {
		t.Run(tc.kind, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"kind": tc.kind, "from": "+14155550123",
				"status_callback_events": []string{"initiated", "ringing", "answered", "completed"}})
			resp, err := http.Post(tc.url+"/sim/inbound", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var placed struct {
				Sid string `json:"sid"`
			}
			json.NewDecoder(resp.Body).Decode(&placed)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 || placed.Sid == "" {
				t.Fatalf("sim inbound: %d %+v", resp.StatusCode, placed)
			}

			got := waitForCall(t, s, placed.Sid, func(c call.Call) bool { return c.State == call.InProgress })
			if got.Direction != call.Inbound || got.From != "+14155550123" {
				t.Fatalf("inbound call: %+v", got)
			}
			// The simulator opened our media stream (its handshake was verified) and hears it.
			redistest.Eventually(t, 15*time.Second, "the media stream", func() bool {
				var report struct {
					StreamsOpened int `json:"streams_opened"`
				}
				r, err := http.Get(tc.url + "/sim/calls/" + placed.Sid)
				if err != nil {
					return false
				}
				defer r.Body.Close()
				json.NewDecoder(r.Body).Decode(&report)
				return report.StreamsOpened >= 1
			})
			r, err := http.Post(tc.url+"/sim/calls/"+placed.Sid+"/hangup", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			ended := waitForCall(t, s, placed.Sid, func(c call.Call) bool { return c.State.Terminal() })
			if ended.State != call.Completed || len(ended.History) < 3 {
				t.Fatalf("after hangup: %v with %d history entries", ended.State, len(ended.History))
			}
		})
	}
}

func waitForCall(t *testing.T, s *server, carrierCallID string, done func(call.Call) bool) call.Call {
	t.Helper()
	var last call.Call
	redistest.Eventually(t, 15*time.Second, "call "+carrierCallID, func() bool {
		resp, body := get(t, s.base+"/api/calls?carrier_call_id="+carrierCallID, adminToken)
		var list struct{ Calls []call.Call }
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Calls) != 1 {
			return false
		}
		last = list.Calls[0]
		return done(last)
	})
	return last
}
