package main

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/webhooks"
)

// callback is one prepared request: signing is the carrier's work, done before the clock runs.
type callback struct {
	path string // path and query, as the carrier requests it
	body []byte
	sig  string
}

// workload is a fixed list of callbacks from realistic call lifecycles, handed out in order.
type workload struct {
	items []callback
	next  atomic.Int64
}

// maxPrepared bounds the callbacks prepared per phase (memory); a phase that outruns them
// starts over, which the store then sees as duplicates.
const maxPrepared = 600_000

func newWorkload(o options, token string) *workload {
	n := 40_000 * int(o.duration.Seconds()+1)
	if o.rate > 0 && o.rate*int(o.duration.Seconds()+1) > n {
		n = o.rate * int(o.duration.Seconds()+1)
	}
	n = min(n, maxPrepared)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	w := &workload{items: make([]callback, 0, n)}
	// Interleave many live calls, as a carrier's stream of callbacks does.
	const live = 256
	type liveCall struct {
		events []callback
	}
	calls := make([]liveCall, 0, live)
	for len(w.items) < n {
		for len(calls) < live {
			calls = append(calls, liveCall{events: lifecycle(rng, o, token)})
		}
		i := rng.IntN(len(calls))
		w.items = append(w.items, calls[i].events[0])
		calls[i].events = calls[i].events[1:]
		if len(calls[i].events) == 0 {
			calls[i] = calls[len(calls)-1]
			calls = calls[:len(calls)-1]
		}
	}
	return w
}

func (w *workload) take() callback {
	i := w.next.Add(1) - 1
	return w.items[i%int64(len(w.items))]
}

var endings = []struct {
	status string
	sip    string
}{{"completed", "200"}, {"completed", "200"}, {"completed", "200"}, {"busy", "486"}, {"no-answer", "487"}, {"failed", "404"}}

// lifecycle is one call's callbacks as Twilio sends them: initiated, ringing, answered,
// completed (or a failed ending), with every parameter a real one carries.
func lifecycle(rng *rand.Rand, o options, token string) []callback {
	sid := fmt.Sprintf("CA%016x%016x", rng.Uint64(), rng.Uint64())
	inbound := rng.IntN(2) == 0
	path := "/webhooks/load/status"
	direction := "inbound"
	if !inbound {
		path += "?sb_call=" + store.NewCallID()
		direction = "outbound-api"
	}
	end := endings[rng.IntN(len(endings))]
	statuses := []string{"initiated", "ringing", "in-progress", end.status}
	if end.status != "completed" {
		statuses = []string{"initiated", "ringing", end.status}
	}
	at := time.Now().UTC()
	var out []callback
	for seq, status := range statuses {
		f := url.Values{
			"AccountSid": {"AC0123456789abcdef0123456789abcdef"}, "ApiVersion": {"2010-04-01"},
			"CallSid": {sid}, "CallStatus": {status}, "CallbackSource": {"call-progress-events"},
			"Called": {"+15558675310"}, "CalledCity": {"SAN FRANCISCO"}, "CalledCountry": {"US"}, "CalledState": {"CA"}, "CalledZip": {"94105"},
			"Caller": {"+14155552671"}, "CallerCity": {"OAKLAND"}, "CallerCountry": {"US"}, "CallerState": {"CA"}, "CallerZip": {"94612"},
			"Direction": {direction}, "From": {"+14155552671"}, "FromCity": {"OAKLAND"}, "FromCountry": {"US"}, "FromState": {"CA"}, "FromZip": {"94612"},
			"SequenceNumber": {strconv.Itoa(seq)}, "Timestamp": {at.Add(time.Duration(seq) * time.Second).Format(time.RFC1123Z)},
			"To": {"+15558675310"}, "ToCity": {"SAN FRANCISCO"}, "ToCountry": {"US"}, "ToState": {"CA"}, "ToZip": {"94105"},
		}
		if seq == len(statuses)-1 {
			f.Set("CallDuration", strconv.Itoa(rng.IntN(600)))
			f.Set("SipResponseCode", end.sip)
			if status == "completed" {
				f.Set("Duration", "1")
			}
		}
		body := []byte(f.Encode())
		// The signature is over the URL the carrier calls; the host is filled in by drive.
		out = append(out, callback{path: path, body: body})
	}
	if rng.Float64() < o.reorderRate && len(out) > 2 {
		i := rng.IntN(len(out) - 1)
		out[i], out[i+1] = out[i+1], out[i]
	}
	for i := 0; i < len(out); i++ {
		if rng.Float64() < o.dupRate {
			out = append(out[:i+1], out[i:]...)
			i++
		}
	}
	for i := range out {
		out[i].sig = token // signed for real in sign, once the base URL is known
	}
	return out
}

// sign computes every signature for base, the URL the server is reached at.
func (w *workload) sign(base string) {
	for i := range w.items {
		it := &w.items[i]
		it.sig = webhooks.SignTwilio(it.sig, base+it.path, it.body)
	}
}
