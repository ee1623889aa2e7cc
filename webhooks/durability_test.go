package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
)

// TestNothingAcknowledgedIsLost kills Redis in the middle of a stream of callbacks and starts
// it again: callbacks during the outage get 503, and every callback that got a 2xx, before,
// during or after, is in the store once Redis is back.
func TestNothingAcknowledgedIsLost(t *testing.T) {
	redis := redistest.NewServer(t)
	h := newHarness(t, redis.URL(), func(d *Deps) { d.AckTimeout = 500 * time.Millisecond })
	statuses := []string{"initiated", "ringing", "in-progress", "completed"}

	var (
		mu    sync.Mutex
		acked = map[string][]string{} // CallSid -> event ids acknowledged with 2xx
		codes = map[int]int{}
		sent  atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	for w := range 4 {
		senders.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				sid := fmt.Sprintf("CA%08x%024x", w, n)
				for seq, status := range statuses {
					form := statusForm(sid, status, seq, "Direction", "inbound")
					req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/webhooks/tw/status", strings.NewReader(form.Encode()))
					req.Header.Set("X-Twilio-Signature", SignTwilio(twilioToken, h.http.URL+"/webhooks/tw/status", []byte(form.Encode())))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					resp.Body.Close()
					sent.Add(1)
					mu.Lock()
					codes[resp.StatusCode]++
					if resp.StatusCode/100 == 2 {
						acked[sid] = append(acked[sid], fmt.Sprintf("tw:%s:%d:%s", sid, seq, status))
					}
					mu.Unlock()
				}
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	count := func(code int) int { mu.Lock(); defer mu.Unlock(); return codes[code] }

	waitFor("callbacks to flow", func() bool { return count(204) > 200 })
	redis.Stop()
	waitFor("503s while Redis is down", func() bool { return count(503) > 5 })
	redis.Start()
	before := count(204)
	waitFor("callbacks to flow again", func() bool { return count(204) > before+200 })
	cancel()
	senders.Wait()

	for sid, events := range acked {
		c, err := h.st.CallByCarrierID(context.Background(), sid, "tw")
		if err != nil {
			t.Fatalf("call %s had %d acknowledged events and is not in the store: %v", sid, len(events), err)
		}
		have := map[string]bool{}
		for _, e := range c.History {
			have[e.EventID] = true
		}
		for _, id := range events {
			if !have[id] {
				t.Fatalf("event %s was acknowledged and is not in the store", id)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for code, n := range codes {
		if code != 204 && code != 503 {
			t.Errorf("%d callbacks answered %d", n, code)
		}
	}
	t.Logf("%d callbacks: %v; %d calls checked", sent.Load(), codes, len(acked))
}
