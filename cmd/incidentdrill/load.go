package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/ackhist"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
)

// The load the drill drives: calls placed through the API, inbound calls offered by the
// carriers, and the polls that watch them.

// apiCall is the part of a call in JSON the drill reads.
type apiCall struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	Carrier       string `json:"carrier"`
	CarrierCallID string `json:"carrier_call_id"`
	History       []struct {
		EventID    string    `json:"event_id"`
		State      string    `json:"state"`
		Carrier    string    `json:"carrier"`
		Detail     string    `json:"detail"`
		Changed    bool      `json:"changed"`
		ReceivedAt time.Time `json:"received_at"`
		Source     string    `json:"source"`
	} `json:"history"`
}

func (d *drill) place(ctx context.Context, to string, dest destination) *placed {
	p := &placed{to: to, dest: dest, sent: time.Now()}
	code, body, err := d.s.Do(ctx, d.s.LBURL, http.MethodPost, "/api/calls", map[string]string{"to": to})
	p.latency, p.status = time.Since(p.sent), code
	if err != nil {
		p.err = err.Error()
		return p
	}
	var answer struct {
		apiCall
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Call *apiCall `json:"call"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		p.err = fmt.Sprintf("answer is not JSON: %.80q", body)
		return p
	}
	c := answer.apiCall
	if answer.Call != nil {
		c = *answer.Call
	}
	if answer.Error != nil {
		p.err = answer.Error.Code + ": " + answer.Error.Message
	}
	p.id, p.carrier, p.carrierCallID = c.ID, c.Carrier, c.CarrierCallID
	for _, h := range c.History {
		if strings.HasPrefix(h.EventID, c.ID+":attempt:") {
			p.attempts = append(p.attempts, attempt{h.Carrier, h.Detail})
		}
	}
	return p
}

// callbacksPerInbound is how many callbacks an inbound call brings: a Twilio one three status
// callbacks (ringing, in-progress, completed; its voice webhook is a request, not a
// callback), a Telnyx one five webhooks (initiated, answered, streaming started and stopped,
// hangup); the burst alternates them.
const callbacksPerInbound = 4

// burstInbound makes both carriers call Switchboard for dur, at the rate that multiplies the
// callbacks they send by the burst factor: it counts the callbacks of the last five seconds,
// and adds (factor-1) times as many, in inbound calls. The report shows the ratio offered (the
// burst's own callbacks over its length, plus the steady ones) and the busiest second
// Switchboard saw (a call's callbacks spread over its length, so it is lower).
func (d *drill) burstInbound(ctx context.Context, dur time.Duration) {
	steady := 0
	since := time.Now().Add(-5 * time.Second)
	for _, c := range d.s.Carriers() {
		for _, del := range c.Delivered() {
			if !del.Dropped && del.At.After(since) {
				steady++
			}
		}
	}
	rate := max(float64(d.o.burstFactor-1)*float64(steady)/5/callbacksPerInbound, 1)
	interval := time.Duration(float64(time.Second) / rate)
	before := d.s.ScrapeAcks(ctx)
	start := time.Now()
	defer func() {
		end := time.Now()
		// Switchboard's own ack times while the burst's callbacks come in: its calls last
		// the talk time.
		sleep(ctx, d.o.inboundTalk+time.Second)
		during := map[string]ackhist.Histogram{}
		for route, h := range d.s.ScrapeAcks(ctx) {
			during[route] = h.Minus(before[route])
		}
		d.mu.Lock()
		d.burst, d.burstAcks = span{start, end}, during
		d.mu.Unlock()
	}()
	for i := 0; ; i++ {
		next := start.Add(time.Duration(i) * interval)
		if next.Sub(start) >= dur || !sleep(ctx, time.Until(next)) {
			return
		}
		d.offer(i, true)
	}
}

// inboundLoad makes the carriers call in at the steady inbound rate, alternately, until
// stop: the calls the agents are there for.
//
// Callers arrive at random (a Poisson process, seeded so a run repeats), not on a clock: on
// a clock they would keep arriving at the very moment the timeline switches something, which
// real callers do not.
func (d *drill) inboundLoad(ctx context.Context, stop time.Time) {
	rng := rand.New(rand.NewPCG(7, 11))
	next := time.Now()
	for i := 0; ; i++ {
		next = next.Add(time.Duration(rng.ExpFloat64() / d.o.inboundRate * float64(time.Second)))
		if !next.Before(stop) || !sleep(ctx, time.Until(next)) {
			return
		}
		d.offer(i, false)
	}
}

// offer makes the i-th inbound call of the steady stream or of the burst, from the primary
// (Twilio) or the secondary (Telnyx) in turn.
func (d *drill) offer(i int, burst bool) {
	c, kind := d.s.Primary, sim.Twilio
	if i%2 == 1 {
		c, kind = d.s.Secondary, sim.Telnyx
	}
	from := fmt.Sprintf("+1444%07d", i%10000000)
	if burst {
		from = fmt.Sprintf("+1445%07d", i%10000000)
	}
	o := &offered{kind: kind, at: time.Now(), burst: burst}
	sid, err := c.Inbound(sim.InboundRequest{Kind: kind, From: from, HangupAfter: d.o.inboundTalk,
		StatusCallbackEvents: []string{"initiated", "ringing", "answered", "completed"}})
	o.sid = sid
	if err != nil {
		o.err = err.Error()
	}
	d.mu.Lock()
	d.inbound = append(d.inbound, o)
	d.mu.Unlock()
}

// watchStalls measures how late this process wakes up for a 10 ms tick. The drill's
// timings are only as good as the machine's scheduling: a shared machine that stalls the
// carriers or the load for half a second shows up here, and in the report.
func (d *drill) watchStalls(ctx context.Context) {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	var stalls []time.Duration
	for {
		select {
		case <-ctx.Done():
			d.mu.Lock()
			d.stalls = stalls
			d.mu.Unlock()
			return
		case now := <-t.C:
			stalls = append(stalls, max(now.Sub(last)-tick, 0))
			last = now
		}
	}
}

// poll samples the primary's breaker on every instance every 50 ms, directly (not through
// the proxy), to tell when the fleet stopped using it.
func (d *drill) poll(ctx context.Context) {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	defer client.CloseIdleConnections()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		smp := sample{at: time.Now(), states: make([]string, len(d.s.Instances))}
		var wg sync.WaitGroup
		for i, in := range d.s.Instances {
			wg.Go(func() { smp.states[i] = primaryBreaker(ctx, client, in.URL()) })
		}
		wg.Wait()
		d.mu.Lock()
		d.samples = append(d.samples, smp)
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func primaryBreaker(ctx context.Context, client *http.Client, base string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/admin/breakers", nil)
	req.Header.Set("Authorization", "Bearer "+stack.AdminToken)
	resp, err := client.Do(req)
	if err != nil {
		return "down"
	}
	defer func() { _ = resp.Body.Close() }() // the status and the body read are what count
	var list struct {
		Breakers []struct {
			Carrier string `json:"carrier"`
			State   string `json:"state"`
		} `json:"breakers"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&list) != nil {
		return "down"
	}
	for _, b := range list.Breakers {
		if b.Carrier == "primary" {
			return b.State
		}
	}
	return "down"
}
