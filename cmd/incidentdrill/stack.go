package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/ackhist"
	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/proxy"
	"github.com/switchboard/switchboard/cmd/internal/rig"
	"github.com/switchboard/switchboard/store/redistest"
)

const adminToken = "incidentdrill-admin-token-0123456789"

// Breaker settings for the compressed clock. The callback deadline is the product's minimum
// (1 s) doubled, so a healthy carrier under the drill's load always makes it; open_timeout
// is short so that a carrier that recovers gets its calls back within seconds.
const (
	callbackDeadline = 2 * time.Second
	openTimeout      = 3 * time.Second
	breakerWindow    = 10 * time.Second
	failureThreshold = 5
	requestTimeout   = 2 * time.Second
	drainTimeout     = 2 * time.Second
	// doorHold is how long a front door waits for its instance to come back from a restart.
	doorHold = 5 * time.Second
	// The agents' side, on the compressed clock: an agent rings for 3 s before the call goes
	// to the next one, and a caller waits at most 10 s for an agent (the simulated callers
	// hang up long before).
	agentRingTimeout = 3 * time.Second
	queueTimeout     = 10 * time.Second
)

// stack is everything the drill runs: one durable redis-server, two simulated carriers, two
// Switchboard processes, and the proxy in front of them, all on 127.0.0.1.
type stack struct {
	o                  options
	dir                string // logs and the built binary
	redis              *redistest.Process
	primary, secondary *sim.Carrier
	lb                 *proxy.Proxy   // the load balancer: calls API and softphones
	lbURL              string         //
	doors              []*proxy.Proxy // each instance's front door: its public URL, for carriers
	instances          []*instance
	client             *http.Client // for the admin and calls API

	mu      sync.Mutex
	retired map[string]ackhist.Histogram // ack histograms of instances' earlier lives

	cancel context.CancelFunc
	wg     sync.WaitGroup // the proxy and the simulators' servers
	closes []func()
}

func (s *stack) close() {
	for _, in := range s.instances {
		in.stop()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for i := len(s.closes) - 1; i >= 0; i-- {
		s.closes[i]()
	}
	s.client.CloseIdleConnections()
}

func startStack(ctx context.Context, o options, dir string) (_ *stack, err error) {
	s := &stack{o: o, dir: dir, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 120 * time.Second}}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel

	// Redis: appendfsync always, so "nothing acknowledged is lost" holds across the stop.
	if s.redis, err = redistest.StartProcess(true); err != nil {
		return nil, err
	}
	s.closes = append(s.closes, s.redis.Close)

	// The proxies' addresses first: the instances and the carriers are told them. Each
	// instance's public URL is its own front door: an agent's media is pointed at the
	// instance that holds the agent, by that URL, and Twilio signs what it sends over it.
	listen := func(p *proxy.Proxy) (string, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		s.wg.Go(func() { _ = p.Serve(bg, l) }) // ends when bg does; a proxy that fails shows in the report as lost requests
		return "http://" + l.Addr().String(), nil
	}
	var backends []*proxy.Backend
	for i := range 2 {
		addr, err := rig.FreeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("sb%d", i+1)
		b := proxy.NewBackend(name, addr)
		backends = append(backends, b)
		door := proxy.New(b)
		door.Hold = doorHold
		if o.mode == "handover" {
			// No restart is coming: what is sent to the stopped instance fails at once (502),
			// as at a load balancer with no backend left, instead of waiting for it.
			door.Hold = 0
		}
		public, err := listen(door)
		if err != nil {
			return nil, err
		}
		s.doors = append(s.doors, door)
		s.instances = append(s.instances, &instance{name: name, addr: addr, public: public, bin: o.bin,
			log: filepath.Join(dir, name+".log"), env: []string{
				"SWITCHBOARD_ADDR=" + addr,
				"SWITCHBOARD_PUBLIC_URL=" + public,
				"REDIS_URL=" + s.redis.URL(),
				"SWITCHBOARD_ADMIN_TOKEN=" + adminToken,
				"SWITCHBOARD_LOG_LEVEL=" + o.logLevel,
				"SWITCHBOARD_DRAIN_TIMEOUT=" + drainTimeout.String(),
				"SWITCHBOARD_WRAP_UP=" + o.wrapUp.String(),
				"SWITCHBOARD_RING_TIMEOUT=" + agentRingTimeout.String(),
				"SWITCHBOARD_QUEUE_TIMEOUT=" + queueTimeoutFor(o).String(),
				"SWITCHBOARD_RECONCILE_AFTER=" + o.reconcileAfter.String(),
			}})
	}
	s.lb = proxy.New(backends...)
	if s.lbURL, err = listen(s.lb); err != nil {
		return nil, err
	}

	// The carriers. Each sends its inbound calls to one instance's front door, so callbacks
	// are spread over both instances (outbound calls are called back at the instance that
	// placed them).
	serve := func(cfg sim.Config) (*sim.Carrier, string, error) {
		c, err := sim.New(cfg)
		if err != nil {
			return nil, "", err
		}
		srv, url, err := c.ServeLoopback(nil)
		if err != nil {
			_ = c.Close() // the set-up failed: that error is the one to report
			return nil, "", err
		}
		s.wg.Go(func() { <-bg.Done(); _ = srv.Close() })      // the run is over; a close error changes no figure
		s.closes = append(s.closes, func() { _ = c.Close() }) // as above
		return c, url, nil
	}
	// Both watch the agents' tone in what their callers hear: the silence while a call moves.
	base := sim.Config{Ring: o.ring, HangupAfter: o.talk, Faults: kindUnknown.faults(), WatchHz: agentHz}
	pcfg, scfg := base, base
	pcfg.Seed, scfg.Seed = 1, 2
	pcfg.TwilioVoiceURL = s.instances[0].public + "/webhooks/primary/voice"
	pcfg.TwilioStatusURL = s.instances[0].public + "/webhooks/primary/status"
	scfg.TelnyxWebhookURL = s.instances[1].public + "/webhooks/secondary/events"
	if o.mode == "handover" {
		// Every call lands on sb1, the instance that is stopped.
		scfg.TelnyxWebhookURL = s.instances[0].public + "/webhooks/secondary/events"
	}
	var primaryURL, secondaryURL string
	if s.primary, primaryURL, err = serve(pcfg); err != nil {
		return nil, err
	}
	if s.secondary, secondaryURL, err = serve(scfg); err != nil {
		return nil, err
	}

	for _, in := range s.instances {
		if err := in.start(ctx); err != nil {
			return nil, err
		}
	}

	breaker := map[string]any{"failure_threshold": failureThreshold, "window": breakerWindow.String(),
		"open_timeout": openTimeout.String(), "callback_deadline": callbackDeadline.String()}
	carriers := map[string]map[string]any{
		"primary": {"kind": "twilio", "api_url": primaryURL, "account_sid": s.primary.AccountSID(),
			"auth_token": s.primary.AuthToken(), "from": "+15550100", "priority": 0, "enabled": true,
			"request_timeout": requestTimeout.String(), "breaker": breaker},
		"secondary": {"kind": "telnyx", "api_url": secondaryURL, "api_key": s.secondary.TelnyxAPIKey(),
			"connection_id": s.secondary.ConnectionID(), "public_key": s.secondary.PublicKeyBase64(),
			"from": "+15550101", "priority": 1, "enabled": true,
			"request_timeout": requestTimeout.String(), "breaker": breaker},
	}
	for _, id := range []string{"primary", "secondary"} {
		code, body, err := s.do(ctx, s.instances[0].url(), http.MethodPut, "/api/admin/carriers/"+id, carriers[id])
		if err == nil && code >= 300 {
			err = fmt.Errorf("answered %d %s", code, body)
		}
		if err != nil {
			return nil, fmt.Errorf("configure carrier %s: %w", id, err)
		}
	}
	// Every instance must know both carriers before the first call.
	for _, in := range s.instances {
		err := rig.WaitFor(ctx, 10*time.Second, func() bool {
			var list struct {
				Carriers []struct{ ID string } `json:"carriers"`
			}
			code, body, err := s.do(ctx, in.url(), http.MethodGet, "/api/admin/carriers", nil)
			return err == nil && code == 200 && json.Unmarshal(body, &list) == nil && len(list.Carriers) == 2
		})
		if err != nil {
			return nil, fmt.Errorf("%s did not load the carriers: %w", in.name, err)
		}
	}
	return s, nil
}

// do sends an admin-token request to base (an instance or the proxy).
func (s *stack) do(ctx context.Context, base, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }() // the status is what counts
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// namedProxy is a proxy with the name the report gives it.
type namedProxy struct {
	name string
	p    *proxy.Proxy
}

func (s *stack) proxies() []namedProxy {
	out := []namedProxy{{"load balancer", s.lb}}
	for i, d := range s.doors {
		out = append(out, namedProxy{s.instances[i].name + "'s front door", d})
	}
	return out
}

// setFaults puts the primary in the state of a window kind; both carriers keep the baseline.
func (s *stack) setFaults(k kind) error { return s.primary.SetFaults(k.faults()) }

// probe asks an instance whether it is ready, on a fresh connection each time, so that no
// idle connection outlives the drill.
var probe = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// instance is one Switchboard process, which the drill may restart on the same address.
type instance struct {
	name, addr, bin, log string
	public               string // its front door
	env                  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	cpu    time.Duration // CPU time of the lives before this one
}

func (in *instance) url() string { return "http://" + in.addr }

func (in *instance) start(ctx context.Context) error {
	logf, err := os.OpenFile(in.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(in.bin)
	cmd.Env = append(os.Environ(), in.env...)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // start failed: that error is the one to report
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	exited := make(chan struct{})
	go func() { // owned by the instance: stop waits for exited
		_ = cmd.Wait()   // its exit is recorded by how it was stopped (drain or kill)
		_ = logf.Close() // the log is written by the child; nothing buffered here
		close(exited)
	}()
	in.mu.Lock()
	in.cmd, in.exited = cmd, exited
	in.mu.Unlock()
	err = rig.WaitFor(ctx, 15*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := probe.Get(in.url() + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // only the status was wanted
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-exited:
		return fmt.Errorf("%s exited at start-up; see %s", in.name, in.log)
	default:
	}
	if err != nil {
		return fmt.Errorf("%s did not become ready: %w (log: %s)", in.name, err, in.log)
	}
	return nil
}

// stop sends SIGTERM, lets the instance drain, and kills it if it is still there after the
// drain timeout and a margin.
func (in *instance) stop() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	before := rig.CPUTime(cmd.Process.Pid) // a draining process does next to nothing more
	in.mu.Lock()
	in.cpu += before
	in.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited already; the wait below tells
	select {
	case <-exited:
	case <-time.After(drainTimeout + 3*time.Second):
		_ = cmd.Process.Kill() // it did not drain in time; it may have exited meanwhile
		<-exited
	}
}

// preStop is how long the load balancer has the instance out of rotation before it is sent
// SIGTERM, as a Kubernetes preStop sleep gives load balancers time to stop sending to a pod:
// Switchboard closes its idle keep-alive connections as soon as it is told to stop, and a
// request the balancer writes on one of them at that moment fails.
const preStop = time.Second

// restart restarts instance i the way an orchestrator does: out of the load balancer's
// rotation, SIGTERM (the instance drains), started again on the same address, back in
// rotation once ready. Its front door holds carriers' requests meanwhile.
func (s *stack) restart(ctx context.Context, i int) error {
	in, b := s.instances[i], s.lb.Backends()[i]
	b.Drain(true)
	defer b.Drain(false)
	sleep(ctx, preStop)
	s.retire(s.scrapeOne(ctx, in)) // its counters start again from zero
	in.stop()
	return in.start(ctx)
}

// kill kills instance i with SIGKILL, as a crash or an OOM kill would: no drain, nothing
// finished. The load balancer takes it out of rotation (its health checks fail), and an
// orchestrator starts it again after down.
func (s *stack) kill(ctx context.Context, i int, down time.Duration) error {
	in, b := s.instances[i], s.lb.Backends()[i]
	s.retire(s.scrapeOne(ctx, in)) // its counters die with it
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	if cmd != nil {
		in.cpu += rig.CPUTime(cmd.Process.Pid)
	}
	in.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", in.name)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL) // a crash on purpose; it may have exited already, which exited tells
	<-exited
	b.Drain(true)
	defer b.Drain(false)
	sleep(ctx, down)
	return in.start(ctx)
}

// cpuUsed is the CPU time the instance used over all its lives so far.
func (in *instance) cpuUsed() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	total := in.cpu
	if in.cmd != nil {
		total += rig.CPUTime(in.cmd.Process.Pid)
	}
	return total
}
