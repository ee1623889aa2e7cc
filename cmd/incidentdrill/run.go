package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/agentpool"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/incident"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/machine"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/cmd/internal/rig"
)

type options struct {
	mode        string
	bin         string
	rate        int
	ring, talk  time.Duration
	inboundTalk time.Duration // how long the agents' callers stay; -talk when 0
	warmup      time.Duration
	tail        time.Duration
	restart     bool
	redisStop   time.Duration
	burst       bool
	burstFactor int
	logLevel    string
	logs        string
	wrapUp      time.Duration
	agents      int
	inboundRate float64
	// reconcileAfter is the instances' SWITCHBOARD_RECONCILE_AFTER; kill SIGKILLs an instance
	// mid-burst.
	reconcileAfter time.Duration
	kill           bool
	// The hand-over mode (handover.go): how many bridged calls, through which carrier, and
	// how their instance is stopped.
	calls        int
	carrier      string
	signal       string
	hangupAtKill bool
}

// Load by mode: the full run carries a steady afternoon's worth; the short one is lighter
// because CI runs it beside every other package's tests, under the race detector.
var (
	defaultRate    = map[string]int{"full": 15, "short": 8}
	defaultAgents  = map[string]int{"full": 12, "short": 6}
	defaultInbound = map[string]float64{"full": 2, "short": 1}
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("incidentdrill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.mode, "mode", "full", "full (the whole afternoon at 1 min = 1 s), short (one window of each kind; CI) or handover (bridged calls outlive their instance)")
	fs.StringVar(&o.bin, "bin", "", "switchboard binary to run (default: go build ./cmd/switchboard into a temporary directory)")
	fs.IntVar(&o.rate, "rate", 0, "outbound calls per second (default: 15 full, 8 short)")
	fs.DurationVar(&o.ring, "ring", 3*time.Second, "how long a callee rings before answering (keep it above the callback deadline, 2s)")
	fs.DurationVar(&o.talk, "talk", 3*time.Second, "how long the far end stays on a call: after the answer, or for an inbound caller from the start, waiting included")
	fs.DurationVar(&o.inboundTalk, "inbound-talk", 0, "how long the agents' inbound callers stay, waiting included (0: -talk); longer calls are still up when sb1 is killed, for the hand-over goal")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "load on a healthy primary before the timeline starts")
	fs.DurationVar(&o.tail, "tail", 4*time.Second, "load after the timeline ends, to see traffic return to the primary")
	fs.BoolVar(&o.restart, "restart-instance", true, "restart instance sb2 (SIGTERM, drain, start) mid-run")
	fs.DurationVar(&o.redisStop, "redis-stop", 0, "kill Redis mid-run for this long (default: 10s full, 3s short; 0 to skip with -redis-stop=0)")
	fs.BoolVar(&o.burst, "burst", true, "a burst of inbound calls: the callbacks of the steady load times -burst-factor, for a few seconds")
	fs.IntVar(&o.burstFactor, "burst-factor", 10, "how many times the steady callback rate the burst brings")
	fs.IntVar(&o.agents, "agents", 0, "simulated agents (softphones with pion peers) taking the inbound calls (default: 12 full, 6 short)")
	fs.Float64Var(&o.inboundRate, "inbound-rate", 0, "steady inbound calls per second, for the agents (default: 2 full, 1 short)")
	fs.DurationVar(&o.wrapUp, "wrap-up", 500*time.Millisecond, "how long an agent rests after a call (SWITCHBOARD_WRAP_UP)")
	fs.DurationVar(&o.reconcileAfter, "reconcile-after", 5*time.Second,
		"the instances' SWITCHBOARD_RECONCILE_AFTER: how long a quiet call waits before its carrier is asked about it")
	fs.BoolVar(&o.kill, "kill-instance", true, "kill instance sb1 with SIGKILL mid-burst, then start it again")
	fs.StringVar(&o.logLevel, "log-level", "warn", "Switchboard's log level (its logs go to files, see -logs)")
	fs.StringVar(&o.logs, "logs", "", "keep Switchboard's logs in this directory (default: a temporary one, removed)")
	fs.IntVar(&o.calls, "calls", 50, "handover: bridged calls on the instance that is stopped (as many agents answer them)")
	fs.StringVar(&o.carrier, "carrier", "twilio", "handover: the carrier of the calls, twilio or telnyx")
	fs.StringVar(&o.signal, "signal", "kill", "handover: how the instance carrying the calls stops: kill (SIGKILL, a crash) or term (SIGTERM, a graceful stop)")
	fs.BoolVar(&o.hangupAtKill, "hangup-at-kill", false,
		"handover: the callers hang up the moment their instance stops, so every re-point is refused and the records must get the carrier's outcome")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if o.mode == "handover" {
		return runHandover(ctx, o, args, stdout, stderr)
	}
	var t incident.Timeline
	switch o.mode {
	case "full":
		t = incident.Full
	case "short":
		t = incident.Short
	default:
		return fmt.Errorf("-mode %q: want full, short or handover", o.mode)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if !set["rate"] {
		o.rate = defaultRate[o.mode]
	}
	if !set["agents"] {
		o.agents = defaultAgents[o.mode]
	}
	if !set["inbound-rate"] {
		o.inboundRate = defaultInbound[o.mode]
	}
	if o.inboundTalk <= 0 {
		o.inboundTalk = o.talk
	}
	if !set["redis-stop"] {
		o.redisStop = t.RedisStopFor
	}
	switch {
	case o.rate < 1 || o.rate > 200:
		return errors.New("-rate: want 1 to 200 calls/s")
	case o.agents < 0 || o.agents > 100 || o.inboundRate < 0 || o.inboundRate > 50:
		return errors.New("-agents: want 0 to 100; -inbound-rate: want 0 to 50 calls/s")
	case o.reconcileAfter <= 0:
		return errors.New("-reconcile-after: want a positive duration")
	case o.burstFactor < 2:
		return errors.New("-burst-factor: want at least 2")
	case o.ring <= stack.CallbackDeadline:
		return fmt.Errorf("-ring %v: want more than the callback deadline (%v): the simulator still fetches TwiML while it drops callbacks, and an answer before the deadline would prove the primary alive", o.ring, stack.CallbackDeadline)
	}

	dir, cleanup, err := workDir(ctx, &o, stderr)
	if err != nil {
		return err
	}
	defer cleanup()

	loadBefore := machine.LoadAvg()
	s, err := stack.Start(ctx, stackOptions(o), dir)
	if err != nil {
		return err
	}
	defer s.Close()
	_, _ = fmt.Fprintf(stderr, "incidentdrill: %s mode, %v of timeline at %d calls/s; load balancer %s; sb1 %s (front door %s), sb2 %s (%s); redis %s\n",
		t.Name, t.At(t.End), o.rate, s.LBURL, s.Instances[0].URL(), s.Instances[0].Public, s.Instances[1].URL(), s.Instances[1].Public, s.Redis.URL()) // progress notes; a closed stderr must not stop the drill

	var agents *agentpool.Pool
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	if o.agents > 0 {
		if agents, err = agentpool.Start(ctx, s, agentOptions(s, o)); err != nil {
			return err
		}
		defer agents.Stop() // before the stack closes (deferred earlier)
		agents.Run(agentCtx)
	}

	d, err := drive(ctx, s, t, o)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintln(stderr, "incidentdrill: load stopped; waiting for calls to end and callbacks to settle") // progress notes; a closed stderr must not stop the drill
	unsettled := settle(ctx, s, o.ring+max(o.talk, o.inboundTalk)+15*time.Second)
	var stuck []string
	if agents != nil {
		// Every call has ended: each agent must be back to available once its wrap-up
		// passes (and a softphone that lost its instance has signed in again).
		stuck = agents.Stuck(ctx, o.wrapUp+10*time.Second)
	}
	ev := collect(ctx, s, d, unsettled)
	// Calls whose end the callbacks did not bring are learnt by the reconcilers: give them
	// the time they need, and no more than a minute past it.
	_, _ = fmt.Fprintln(stderr, "incidentdrill: waiting for the store to agree with the carriers") // progress notes; a closed stderr must not stop the drill
	ev.agreedAfter = awaitAgreement(ctx, s, ev, o.reconcileAfter+60*time.Second)
	r := analyse(d, ev, agents, stuck, s.RunAcks(ctx))
	r.loadBefore = loadBefore
	stopAgents()
	command := strings.TrimSpace("go run ./cmd/incidentdrill " + strings.Join(args[1:], " "))
	if err := r.print(stdout, d, ev, command); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if missed := r.missed(); len(missed) > 0 {
		return fmt.Errorf("missed goals:\n  %s", strings.Join(missed, "\n  "))
	}
	return nil
}

// workDir makes the directory for the logs and the binary (-logs, or a temporary one that
// cleanup removes) and builds Switchboard there unless -bin names it.
func workDir(ctx context.Context, o *options, stderr io.Writer) (dir string, cleanup func(), err error) {
	dir, cleanup = o.logs, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "incidentdrill-"); err != nil {
			return "", nil, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) } // a temporary directory left behind is harmless
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	if o.bin == "" {
		_, _ = fmt.Fprintln(stderr, "incidentdrill: building ./cmd/switchboard") // progress notes; a closed stderr must not stop the drill
		if o.bin, err = rig.BuildSwitchboard(ctx, dir, stderr); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return dir, cleanup, nil
}

// queueTimeout is how long a caller waits for an agent on the compressed clock (the
// simulated callers hang up long before).
const queueTimeout = 10 * time.Second

// stackOptions are the stack's options for a run.
func stackOptions(o options) stack.Options {
	so := stack.Options{Bin: o.bin, LogLevel: o.logLevel, WrapUp: o.wrapUp, QueueTimeout: queueTimeout,
		ReconcileAfter: o.reconcileAfter, Ring: o.ring, Talk: o.talk, Faults: incident.Unknown.Faults(), WatchHz: agentpool.AgentHz}
	if o.mode == "handover" {
		so.QueueTimeout, so.Handover = handoverQueueTimeout, true
	}
	return so
}

// setFaults puts the primary in the state of a window kind; both carriers keep the baseline.
func setFaults(s *stack.Stack, k incident.Kind) error { return s.Primary.SetFaults(k.Faults()) }

// agentOptions are the agent pool's options for a run: in the hand-over mode, half the agents
// first sign in on each instance, as a load balancer spreads them, but known: the report says
// how many sessions the stopped instance had.
func agentOptions(s *stack.Stack, o options) agentpool.Options {
	ao := agentpool.Options{Count: o.agents}
	if o.mode == "handover" {
		ao.Homes = []string{s.Instances[0].Public, s.Instances[1].Public}
	}
	return ao
}
