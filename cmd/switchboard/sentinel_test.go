package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
	"github.com/switchboard/switchboard/webhooks"
)

// A carrier streams signed status callbacks at a Switchboard on Redis Sentinel; the primary is
// killed with SIGKILL mid-stream and Sentinel promotes the replica. Every callback answered
// 204 must be in the store afterwards; the others were answered 503, never a 2xx.
func TestSentinelFailoverKeepsEveryAcknowledgedCallback(t *testing.T) {
	sentinel := redistest.NewSentinel(t)
	ns := redistest.Namespace(t)
	const authToken = "sentinel-test-twilio-token-0123456789"
	st := storetest.Open(t, sentinel.URL(), ns)
	reg := carrier.NewRegistry(carrierdb.New(st), carrier.NewHTTPClient(), slog.New(slog.DiscardHandler))
	if _, err := reg.Put(context.Background(), carrier.Config{ID: "tw", Kind: carrier.Twilio, APIURL: "http://127.0.0.1:9",
		AccountSID: "AC" + strings.Repeat("0", 32), AuthToken: authToken, From: "+15550100", Enabled: true}, "test"); err != nil {
		t.Fatal(err)
	}
	s := start(t, map[string]string{"REDIS_URL": sentinel.URL(), "SWITCHBOARD_REDIS_NAMESPACE": ns})
	statusURL := s.base + "/webhooks/tw/status"

	var (
		mu       sync.Mutex
		acked    = map[string][]int{} // CallSid -> sequence numbers answered 204
		nAcked   int
		statuses = map[int]int{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for c := 0; ; c++ {
				sid := fmt.Sprintf("CA%08x%024x", w, c)
				for seq := range 50 { // a new call every 50 callbacks: call logs stay short
					select {
					case <-stop:
						return
					default:
					}
					form := url.Values{"AccountSid": {"AC" + strings.Repeat("0", 32)}, "CallSid": {sid},
						"CallStatus": {"ringing"}, "SequenceNumber": {strconv.Itoa(seq)}, "Direction": {"inbound"},
						"From": {"+14155550100"}, "To": {"+15550100"}}
					body := []byte(form.Encode())
					req, _ := http.NewRequest(http.MethodPost, statusURL, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("X-Twilio-Signature", webhooks.SignTwilio(authToken, statusURL, body))
					resp, err := client.Do(req)
					code := 0
					if err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
					mu.Lock()
					statuses[code]++
					if code == http.StatusNoContent {
						acked[sid] = append(acked[sid], seq)
						nAcked++
					}
					mu.Unlock()
				}
			}
		})
	}
	ackedSoFar := func() int { mu.Lock(); defer mu.Unlock(); return nAcked }
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopWriters()

	redistest.Eventually(t, 30*time.Second, "300 callbacks acknowledged before the kill", func() bool { return ackedSoFar() >= 300 })
	sentinel.KillPrimary()
	atKill := ackedSoFar()
	sentinel.WaitPromoted(30 * time.Second)
	sentinel.RestartOldPrimary() // the promoted primary's replica, so acknowledgements resume
	redistest.Eventually(t, 60*time.Second, "300 more callbacks acknowledged after the promotion", func() bool { return ackedSoFar() >= atKill+300 })
	stopWriters()

	mu.Lock()
	defer mu.Unlock()
	for code := range statuses {
		if code != http.StatusNoContent && code != http.StatusServiceUnavailable {
			t.Errorf("callbacks answered %d: %v (want only 204 and 503)", code, statuses)
		}
	}
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no callback was refused while the primary was dead: the kill did not happen mid-stream (%v)", statuses)
	}
	lost := 0
	for sid, seqs := range acked {
		var got struct {
			History []struct {
				EventID string `json:"event_id"`
			} `json:"history"`
		}
		if code := request(t, http.MethodGet, s.base+"/api/calls/"+store.InboundCallID("tw", sid), adminToken, nil, &got); code != http.StatusOK {
			t.Fatalf("call %s after the failover: %d", sid, code)
		}
		have := map[string]bool{}
		for _, h := range got.History {
			have[h.EventID] = true
		}
		for _, seq := range seqs {
			if id := fmt.Sprintf("tw:%s:%d:ringing", sid, seq); !have[id] {
				lost++
				t.Errorf("callback %s was answered 204 but is not in the store after the failover", id)
			}
		}
	}
	t.Logf("callbacks by answer: %v; %d acknowledged before the kill; %d acknowledged and lost", statuses, atKill, lost)
}
