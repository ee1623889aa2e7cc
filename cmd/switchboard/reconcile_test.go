package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

// The incident's shape, end to end: a carrier whose callbacks stop while its REST API stays
// right. Each call is answered with its callbacks, then the far end hangs up and the final
// callback is lost; the reconciler learns the real ending from the carrier's API.
//
// With a long SWITCHBOARD_RECONCILE_AFTER only the media stream's closing can bring the check
// in time: that is the trigger under test in the "stream" cases.
func TestReconcileLearnsLostEndingsFromTheCarrier(t *testing.T) {
	for _, tc := range []struct{ name, kind, after string }{
		{"twilio", "twilio", "500ms"},
		{"telnyx", "telnyx", "500ms"},
		{"twilio stream closed", "twilio", "1h"},
		{"telnyx stream closed", "telnyx", "1h"},
	} {
		kind := tc.kind
		t.Run(tc.name, func(t *testing.T) {
			redis := redistest.NewServer(t)
			c, err := sim.New(sim.Config{Ring: 50 * time.Millisecond, HangupAfter: 1500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(c.Handler())
			t.Cleanup(func() { srv.Close(); c.Close() })
			carrierSrv := srv.URL
			d := &drill{t: t, primary: c}
			d.instances = append(d.instances, start(t, map[string]string{"REDIS_URL": redis.URL(),
				"SWITCHBOARD_LOG_LEVEL": "error", "SWITCHBOARD_RECONCILE_AFTER": tc.after}))
			cfg := map[string]any{"kind": "twilio", "api_url": carrierSrv, "account_sid": c.AccountSID(),
				"auth_token": c.AuthToken(), "from": "+15550100", "enabled": true, "breaker": breakerJSON}
			if kind == "telnyx" {
				cfg = map[string]any{"kind": "telnyx", "api_url": carrierSrv, "api_key": c.TelnyxAPIKey(),
					"connection_id": c.ConnectionID(), "public_key": c.PublicKeyBase64(), "from": "+15550101",
					"enabled": true, "breaker": breakerJSON}
			}
			d.put(0, "carrier", cfg)
			d.eventually(3*time.Second, "the carrier is configured", func() bool {
				var list struct{ Carriers []any }
				d.api(0, "GET", "/api/admin/carriers", nil, &list)
				return len(list.Carriers) == 1
			})

			code, placed := d.place(0, number(0))
			if code != http.StatusCreated {
				t.Fatalf("place: %d", code)
			}
			d.eventually(5*time.Second, "the call is answered, by callback", func() bool { return d.call(0, placed.ID).State == "in-progress" })
			if err := c.SetFaults(sim.Faults{CallbackDropRate: 1}); err != nil {
				t.Fatal(err)
			}
			d.eventually(15*time.Second, "the call ends, with a reconciled entry", func() bool { return d.call(0, placed.ID).State == "completed" })

			var got struct {
				History []struct {
					EventID, State, Source string
					Changed                bool
				}
			}
			d.api(0, "GET", "/api/calls/"+placed.ID, nil, &got)
			last := got.History[len(got.History)-1]
			if last.Source != "reconciled" || last.State != "completed" || !last.Changed {
				t.Fatalf("final entry %+v: want the reconciled completed entry", last)
			}
			sources := map[string]bool{}
			for _, h := range got.History {
				sources[h.Source] = true
			}
			if !sources["callback"] || !sources["switchboard"] {
				t.Fatalf("history sources %v: want callback and switchboard entries too", sources)
			}
			_, metrics := get(t, d.instances[0].base+"/metrics", "")
			if !strings.Contains(string(metrics), `switchboard_reconcile_checks_total{carrier="carrier",result="ended"} 1`) {
				t.Fatalf("no ended check in the metrics")
			}
		})
	}
}
