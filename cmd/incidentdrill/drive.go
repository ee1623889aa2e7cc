package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/ackhist"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/incident"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/machine"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/cmd/internal/rig"
)

// destination is what the simulated callee does, by the simulator's rule on the last digit.
type destination int

const (
	answers destination = iota // ends in 0 or 5-9: answered after the ring, then a conversation
	busy                       // ends in 1
	invalid                    // ends in 3: refused by the carrier's API, a final answer
)

// number is the i-th destination of the load: 97 in 100 answer, 2 are busy, 1 is invalid,
// so that final outcomes show up in the report and are seen to stay on their carrier.
func number(i int) (string, destination) {
	d, last := answers, "0"
	switch i % 100 {
	case 25, 75:
		d, last = busy, "1"
	case 50:
		d, last = invalid, "3"
	}
	return "+1555" + strconv.Itoa(2000000+i%1000000) + last, d
}

// placed is one outbound call as the load saw it: POST /api/calls and its answer.
type placed struct {
	to            string
	dest          destination
	sent          time.Time
	latency       time.Duration
	status        int
	err           string // transport error, or the API's error message
	id            string
	carrier       string
	carrierCallID string
	attempts      []attempt // in order
}

// attempt is one carrier's try at a call, from the call's history.
type attempt struct{ carrier, detail string }

// triedPrimary says whether the call's first attempt went to the primary.
func (p *placed) triedPrimary() bool {
	return len(p.attempts) > 0 && p.attempts[0].carrier == "primary"
}

// offered is one inbound call: of the steady stream the agents answer, or of the burst.
type offered struct {
	kind  sim.Kind
	sid   string
	at    time.Time
	err   string
	burst bool
}

// sample is the primary's breaker state on every instance at one moment: closed, half-open,
// open, or "down" when the instance did not answer.
type sample struct {
	at     time.Time
	states []string
}

// span is when something happened on the wall clock.
type span struct{ from, to time.Time }

func (s span) contains(t time.Time) bool { return !t.Before(s.from) && t.Before(s.to) }

// overlaps says whether [from, to] and s have a moment in common.
func (s span) overlaps(from, to time.Time) bool { return !to.Before(s.from) && from.Before(s.to) }

// drill is one run: what was done when, and what the load saw.
type drill struct {
	s  *stack.Stack
	t  incident.Timeline
	o  options
	t0 time.Time // minute 0 of the timeline on the wall clock

	windows   []span // one per timeline window: when its faults were in force
	restart   span   // instance 2 out of service
	restartOK bool
	restartErr,
	redisErr error
	redisStop span
	recovered time.Time // both instances ready again after Redis came back
	killed    span      // instance 1 killed with SIGKILL until it was ready again
	killErr   error
	// killedCalls are the bridged calls whose media sb1 held at the kill (killhandover.go).
	killedCalls []killedCall
	burst       span
	burstAcks   map[string]ackhist.Histogram // Switchboard's ack times during the burst
	stalls      []time.Duration              // how late this process woke up for its 10 ms ticks

	// CPU: the drill's own (carriers, proxy, load) from the start of the load, and Redis's
	// lives before the stop.
	selfFrom, redisCPU time.Duration
	began              time.Time

	mu      sync.Mutex
	calls   []*placed
	inbound []*offered
	samples []sample
}

// drive runs the timeline against the stack under load and returns what happened.
func drive(ctx context.Context, s *stack.Stack, t incident.Timeline, o options) (*drill, error) {
	d := &drill{s: s, t: t, o: o, windows: make([]span, len(t.Windows)), selfFrom: machine.SelfCPU(), began: time.Now()}
	d.t0 = time.Now().Add(o.warmup)
	stopAt := d.t0.Add(t.At(t.End) + o.tail)

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var bg sync.WaitGroup
	defer bg.Wait()
	bg.Go(func() { d.load(loadCtx, stopAt) })
	if o.inboundRate > 0 {
		bg.Go(func() { d.inboundLoad(loadCtx, stopAt) })
	}
	bg.Go(func() { d.poll(loadCtx) })
	bg.Go(func() { d.watchStalls(loadCtx) })

	type action struct {
		at time.Duration
		do func()
	}
	var plan []action
	for i, w := range t.Windows {
		plan = append(plan, action{t.At(w.From), func() {
			if err := setFaults(s, w.Kind); err != nil {
				panic(err) // the faults are ours and valid
			}
			d.windows[i].from = time.Now()
		}})
		plan = append(plan, action{t.At(w.To), func() {
			// A window that starts where this one ends replaces the faults next; clearing
			// them first would give the primary a moment of health it did not have.
			if i+1 >= len(t.Windows) || t.Windows[i+1].From != w.To {
				_ = setFaults(s, incident.Unknown) // the simulator is in this process and takes any kind; the next window sets them again
			}
			d.windows[i].to = time.Now()
		}})
	}
	var chaos sync.WaitGroup
	defer chaos.Wait()
	if o.restart && t.RestartAt >= 0 {
		plan = append(plan, action{t.At(t.RestartAt), func() {
			chaos.Go(func() {
				from := time.Now()
				err := s.Restart(ctx, 1)
				d.mu.Lock()
				d.restart, d.restartOK, d.restartErr = span{from, time.Now()}, err == nil, err
				d.mu.Unlock()
			})
		}})
	}
	if o.redisStop > 0 && t.RedisStopAt >= 0 {
		plan = append(plan, action{t.At(t.RedisStopAt), func() {
			chaos.Go(func() {
				from := time.Now()
				cpu := rig.CPUTime(s.Redis.PID())
				s.Redis.Stop() // SIGKILL, as a crash would
				sleep(ctx, o.redisStop)
				err := s.Redis.Start()
				back := time.Now()
				if err == nil {
					err = rig.WaitFor(ctx, 30*time.Second, func() bool {
						for _, in := range s.Instances {
							if resp, err := stack.Probe.Get(in.URL() + "/readyz"); err != nil || resp.Body.Close() != nil || resp.StatusCode != http.StatusOK {
								return false
							}
						}
						return true
					})
				}
				d.mu.Lock()
				d.redisStop, d.redisErr, d.redisCPU, d.recovered = span{from, back}, err, cpu, time.Now()
				d.mu.Unlock()
			})
		}})
	}
	if o.burst && t.BurstAt >= 0 {
		plan = append(plan, action{t.At(t.BurstAt), func() {
			chaos.Go(func() { d.burstInbound(ctx, t.BurstFor) })
		}})
		if o.kill {
			// Mid-burst, the worst moment: callbacks acknowledged, work owed to carriers.
			plan = append(plan, action{t.At(t.BurstAt) + t.BurstFor/2, func() {
				chaos.Go(func() {
					calls := bridgedOn(s, 0)
					// The span starts at the signal itself, not before Kill's scrape of the
					// instance's counters: the hand-over's silences are measured from it.
					from, err := s.Kill(ctx, 0, killedFor)
					if from.IsZero() {
						from = time.Now()
					}
					d.mu.Lock()
					d.killed, d.killErr, d.killedCalls = span{from, time.Now()}, err, calls
					d.mu.Unlock()
				})
			}})
		}
	}
	// Stable: of two actions at the same moment, a window's end comes before the next one's
	// start, as planned.
	slices.SortStableFunc(plan, func(a, b action) int { return cmp.Compare(a.at, b.at) })
	for _, a := range plan {
		if !sleep(ctx, time.Until(d.t0.Add(a.at))) {
			return d, ctx.Err()
		}
		a.do()
	}
	if !sleep(ctx, time.Until(stopAt)) {
		return d, ctx.Err()
	}
	stopLoad()
	bg.Wait()
	chaos.Wait()
	if d.restartErr != nil {
		return d, fmt.Errorf("restart of %s: %w", s.Instances[1].Name, d.restartErr)
	}
	if d.redisErr != nil {
		return d, fmt.Errorf("redis did not come back: %w", d.redisErr)
	}
	if d.killErr != nil {
		return d, fmt.Errorf("%s did not come back after SIGKILL: %w", s.Instances[0].Name, d.killErr)
	}
	return d, nil
}

// usage is the CPU each part of the drill used since the load began, and the wall time.
type usage struct {
	sb1, sb2, redis, drill, wall time.Duration
}

func (d *drill) usage() usage {
	return usage{sb1: d.s.Instances[0].CPUUsed(), sb2: d.s.Instances[1].CPUUsed(),
		redis: d.redisCPU + rig.CPUTime(d.s.Redis.PID()), drill: machine.SelfCPU() - d.selfFrom, wall: time.Since(d.began)}
}

// burstNote marks a failure at t as one of the burst's: from its start until its calls have
// had time to end.
func (d *drill) burstNote(t time.Time) string {
	if d.burst.from.IsZero() || t.IsZero() {
		return ""
	}
	if (span{d.burst.from, d.burst.to.Add(d.o.ring + d.o.talk)}).contains(t) {
		return ", during the burst"
	}
	return ""
}

// windowAt names the window in force at t, or "healthy".
func (d *drill) windowAt(t time.Time) string {
	for i, w := range d.windows {
		if w.contains(t) {
			return d.t.Windows[i].Name
		}
	}
	return "healthy"
}

// clockOf names a wall-clock moment on the timeline's clock, to the tenth of a second.
func (d *drill) clockOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	off := t.Sub(d.t0)
	return fmt.Sprintf("%s (t%+.1fs)", d.t.Clock(float64(off)/float64(d.t.Scale)), off.Seconds())
}

// sleep waits for d or until ctx ends, and says whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// load places calls at a steady rate, open loop (a slow answer does not slow the load), from
// now until stop, through the proxy as a client of the calls API would.
func (d *drill) load(ctx context.Context, stop time.Time) {
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Second / time.Duration(d.o.rate)
	start := time.Now()
	for i := 0; ; i++ {
		next := start.Add(time.Duration(i) * interval)
		if !next.Before(stop) || !sleep(ctx, time.Until(next)) {
			return
		}
		to, dest := number(i)
		wg.Go(func() {
			// The placing goes on after the load stops: the answer is part of the run.
			p := d.place(context.WithoutCancel(ctx), to, dest)
			d.mu.Lock()
			d.calls = append(d.calls, p)
			d.mu.Unlock()
		})
	}
}
