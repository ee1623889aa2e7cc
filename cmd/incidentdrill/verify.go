package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
)

// evidence is what the carriers and the store say after the run: the ground truth the
// report is computed from.
type evidence struct {
	stats      map[string]sim.Stats
	reports    map[string]map[string]sim.Report    // carrier -> sid -> what the carrier did
	deliveries map[string][]sim.Delivery           // carrier -> every callback attempt and drop
	callOf     map[string]map[string]string        // carrier -> sid -> our call id
	records    map[string]apiCall                  // our call id -> the call as the store has it
	byCall     map[string]map[string]deliveryState // carrier -> sid -> what became of its callbacks
	sidOf      map[string][2]string                // our call id -> the carrier and its call id
	unreadable map[string]bool                     // call ids whose record could not be read
	unsettled  int                                 // carrier calls still up when the drill gave up waiting
	// agreedAfter is how long after the calls settled the store agreed with the carriers
	// (or the drill gave up waiting): the reconcilers' work.
	agreedAfter time.Duration
}

var terminal = map[string]bool{"completed": true, "busy": true, "failed": true, "no-answer": true, "canceled": true}

// settle waits until every call the carriers carried has ended and their last callbacks are
// out (the number of deliveries stops changing), so that what is missing from the store is
// missing for good.
func settle(ctx context.Context, s *stack.Stack, within time.Duration) (unsettled int) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		unsettled = 0
		for _, c := range s.Carriers() {
			for _, r := range c.Calls() {
				if !terminal[r.Status] {
					unsettled++
				}
			}
		}
		if unsettled == 0 || !sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	count := func() int { return len(s.Primary.Delivered()) + len(s.Secondary.Delivered()) }
	for last, stable := count(), time.Now(); time.Now().Before(deadline) && time.Since(stable) < 1500*time.Millisecond; {
		if !sleep(ctx, 250*time.Millisecond) {
			break
		}
		if n := count(); n != last {
			last, stable = n, time.Now()
		}
	}
	return unsettled
}

// collect reads the carriers' records and every call the run touched from the store.
func collect(ctx context.Context, s *stack.Stack, d *drill, unsettled int) *evidence {
	ev := &evidence{stats: map[string]sim.Stats{}, reports: map[string]map[string]sim.Report{},
		deliveries: map[string][]sim.Delivery{}, callOf: map[string]map[string]string{},
		records: map[string]apiCall{}, byCall: map[string]map[string]deliveryState{}, unreadable: map[string]bool{},
		unsettled: unsettled}
	for id, c := range s.Carriers() {
		ev.stats[id] = c.Stats()
		ev.deliveries[id] = c.Delivered()
		ev.byCall[id] = map[string]deliveryState{}
		for _, d := range ev.deliveries[id] {
			st := ev.byCall[id][d.CallSID]
			switch {
			case d.Dropped:
				st.dropped++
			case d.Acked:
				st.acked++
			default:
				st.refused++
				if d.StatusCode == http.StatusServiceUnavailable {
					st.refused503++
				}
			}
			ev.byCall[id][d.CallSID] = st
		}
		ev.reports[id] = map[string]sim.Report{}
		for _, r := range c.Calls() {
			ev.reports[id][r.SID] = r
		}
		ev.callOf[id] = map[string]string{}
	}
	ids := map[string]bool{}
	for _, p := range d.calls {
		if p.id != "" {
			ids[p.id] = true
		}
		if p.carrierCallID != "" && ev.callOf[p.carrier] != nil {
			ev.callOf[p.carrier][p.carrierCallID] = p.id
		}
	}
	// Calls placed whose record does not name the carrier's call (the link to the carrier's
	// id was not stored: Redis was away): every call of the load dials its own number, so
	// the carrier's call to that number is ours.
	byTo := map[string]string{}
	for _, p := range d.calls {
		if p.id != "" && p.carrierCallID == "" {
			byTo[p.to] = p.id
		}
	}
	for carrier, reps := range ev.reports {
		for sid, r := range reps {
			if _, known := ev.callOf[carrier][sid]; !known && r.Direction == "outbound" && byTo[r.To] != "" {
				ev.callOf[carrier][sid] = byTo[r.To]
			}
		}
	}
	// Calls the carriers know that the load's answers did not name: inbound calls, and any
	// call whose answer was lost. Twilio callbacks carry our id in the URL we gave; the rest
	// are found the way an operator would, by the carrier's id.
	for carrier, dels := range ev.deliveries {
		for _, del := range dels {
			if _, ok := ev.callOf[carrier][del.CallSID]; ok {
				continue
			}
			if u, err := url.Parse(del.URL); err == nil && u.Query().Get("sb_call") != "" {
				ev.callOf[carrier][del.CallSID] = u.Query().Get("sb_call")
			}
		}
		for sid := range ev.reports[carrier] {
			if _, ok := ev.callOf[carrier][sid]; ok {
				continue
			}
			var list struct {
				Calls []apiCall `json:"calls"`
			}
			q := "/api/calls?carrier_call_id=" + url.QueryEscape(sid) + "&carrier=" + carrier
			if code, body, err := s.Do(ctx, s.Instances[0].URL(), http.MethodGet, q, nil); err == nil && code == http.StatusOK &&
				json.Unmarshal(body, &list) == nil && len(list.Calls) == 1 {
				ev.callOf[carrier][sid] = list.Calls[0].ID
			}
		}
	}
	ev.sidOf = map[string][2]string{}
	for carrier, m := range ev.callOf {
		for sid, id := range m {
			ids[id] = true
			ev.sidOf[id] = [2]string{carrier, sid}
		}
	}

	// Read every call, a few at a time, from one instance directly.
	work := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range work {
				c, found, err := readCall(ctx, s, id)
				mu.Lock()
				switch {
				case err != nil:
					ev.unreadable[id] = true
				case found:
					ev.records[id] = c
				}
				mu.Unlock()
			}
		})
	}
	for id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return ev
}

// storeEventID is the id under which the store keeps the event a delivery carried.
func storeEventID(d sim.Delivery) string {
	if d.Kind == sim.Telnyx {
		return "tx:" + d.EventID
	}
	return "tw:" + d.EventID
}

// lostEvent is an acknowledged callback whose event the store does not have, or could not
// be checked.
type lostEvent struct {
	carrier, sid, eventID, callID string
	at                            time.Time
	why                           string
}

// lost checks every acknowledged delivery against the store: an event id is unique to one
// event of one call, so an acknowledged event is stored if some call's history has it. One
// that none has is lost if the call it belongs to was read; if that call could not be found
// or read, it is unverified, which is not a pass either.
func (ev *evidence) lost() (acked int, lost, unverified []lostEvent) {
	stored := map[string]bool{}
	for _, c := range ev.records {
		for _, e := range c.History {
			stored[e.EventID] = true
		}
	}
	for carrier, dels := range ev.deliveries {
		for _, d := range dels {
			if !d.Acked {
				continue
			}
			acked++
			eid := storeEventID(d)
			if stored[eid] {
				continue
			}
			id := ev.callOf[carrier][d.CallSID]
			l := lostEvent{carrier: carrier, sid: d.CallSID, eventID: eid, callID: id, at: d.At}
			_, read := ev.records[id]
			switch {
			case id == "":
				l.why = "no call of ours names the carrier's call"
				unverified = append(unverified, l)
			case ev.unreadable[id]:
				l.why = "the call's record could not be read"
				unverified = append(unverified, l)
			case !read:
				l.why = "the call does not exist"
				lost = append(lost, l)
			default:
				l.why = fmt.Sprintf("not in the call's history (%d entries, state %s)", len(ev.records[id].History), ev.records[id].State)
				lost = append(lost, l)
			}
		}
	}
	return acked, lost, unverified
}

// readCall reads one call, trying again for a while if the instance does not answer: the
// machine may be busy, and a record that cannot be read proves nothing either way.
func readCall(ctx context.Context, s *stack.Stack, id string) (apiCall, bool, error) {
	var err error
	for try := range 4 {
		if try > 0 && !sleep(ctx, time.Duration(try)*250*time.Millisecond) {
			break
		}
		var code int
		var body []byte
		code, body, err = s.Do(ctx, s.Instances[0].URL(), http.MethodGet, "/api/calls/"+url.PathEscape(id), nil)
		switch {
		case err != nil:
		case code == http.StatusNotFound:
			return apiCall{}, false, nil
		case code != http.StatusOK:
			err = fmt.Errorf("GET /api/calls/%s: %d", id, code)
		default:
			var c apiCall
			if err = json.Unmarshal(body, &c); err == nil {
				return c, true, nil
			}
		}
	}
	return apiCall{}, false, err
}

// refusedDuring says whether one of the call's callbacks was answered 503 during w: a call
// whose webhook Switchboard could not store (an inbound Telnyx call is then never answered)
// was caught by the Redis stop.
func (ev *evidence) refusedDuring(carrier, sid string, w span) bool {
	if ev.byCall[carrier][sid].refused503 == 0 {
		return false
	}
	for _, d := range ev.deliveries[carrier] {
		if d.CallSID == sid && d.StatusCode == http.StatusServiceUnavailable && w.contains(d.At) {
			return true
		}
	}
	return false
}

// carried says whether the carrier's record shows a call that went through: answered,
// connected to Switchboard's media endpoint, and ended normally. It is the carrier's word,
// not the store's: the store cannot know what the carrier never told it.
func carried(r sim.Report) (bool, string) {
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "application error") || strings.HasPrefix(n, "31920") || strings.HasPrefix(n, "media stream start") {
			return false, clip(n, 90)
		}
	}
	switch {
	case r.Status == "canceled" && r.AnsweredAt.IsZero() && r.Direction == "inbound":
		return false, "the caller hung up before Switchboard answered"
	case r.Status != "completed":
		return false, "the carrier ended it " + r.Status
	case r.AnsweredAt.IsZero():
		return false, "never answered"
	case r.StreamsOpened == 0:
		return false, "answered, but no media stream reached Switchboard"
	}
	return true, ""
}

// deliveryState sums up what became of a call's callbacks at the carrier.
type deliveryState struct{ dropped, refused, refused503, acked int }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (d destination) String() string {
	switch d {
	case busy:
		return "busy"
	case invalid:
		return "invalid"
	}
	return "answers"
}

// attemptsSummary is the compact form of a call's attempts for a failure reason.
func attemptsSummary(as []attempt) string {
	if len(as) == 0 {
		return ""
	}
	var parts []string
	for _, a := range as {
		parts = append(parts, a.detail)
	}
	return fmt.Sprintf(" [%s]", strings.Join(parts, "; "))
}
