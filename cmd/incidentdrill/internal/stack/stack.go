// Package stack runs what the incident drill drives: one durable redis-server, two
// simulated carriers, two Switchboard processes with a front door each, and the load
// balancer in front of them. cmd/incidentdrill starts it, restarts and kills its instances,
// and reads their ack histograms.
package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// AdminToken is the instances' admin token, for the drill's requests to the admin API.
const AdminToken = "incidentdrill-admin-token-0123456789"

// Breaker settings for the compressed clock. The callback deadline is the product's minimum
// (1 s) doubled, so a healthy carrier under the drill's load always makes it; open_timeout
// is short so that a carrier that recovers gets its calls back within seconds.
const (
	CallbackDeadline = 2 * time.Second
	OpenTimeout      = 3 * time.Second
	BreakerWindow    = 10 * time.Second
	FailureThreshold = 5
	RequestTimeout   = 2 * time.Second
	DrainTimeout     = 2 * time.Second
	// doorHold is how long a front door waits for its instance to come back from a restart.
	doorHold = 5 * time.Second
	// agentRingTimeout is the agents' side on the compressed clock: an agent rings for 3 s
	// before the call goes to the next one.
	agentRingTimeout = 3 * time.Second
)

// Options are what the drill's flags decide about the stack.
type Options struct {
	Bin      string // the Switchboard binary
	LogLevel string
	WrapUp   time.Duration
	// QueueTimeout is how long a caller waits for an agent; ReconcileAfter is the instances'
	// SWITCHBOARD_RECONCILE_AFTER.
	QueueTimeout, ReconcileAfter time.Duration
	// Ring and Talk are the simulated carriers' ring time and their callers' talk time;
	// Faults are the primary's faults at the start, and both carriers' baseline.
	Ring, Talk time.Duration
	Faults     sim.Faults
	// WatchHz is the agents' tone, which the carriers watch for in what their callers hear.
	WatchHz float64
	// Handover sends every inbound call to sb1, the instance that is stopped, and has the
	// front doors fail at once rather than hold requests for a restart that is not coming.
	Handover bool
}

// Stack is everything the drill runs: one durable redis-server, two simulated carriers, two
// Switchboard processes, and the proxy in front of them, all on 127.0.0.1.
type Stack struct {
	Redis              *redistest.Process
	Primary, Secondary *sim.Carrier
	LB                 *proxy.Proxy   // the load balancer: calls API and softphones
	LBURL              string         //
	Doors              []*proxy.Proxy // each instance's front door: its public URL, for carriers
	Instances          []*Instance
	client             *http.Client // for the admin and calls API

	mu      sync.Mutex
	retired map[string]ackhist.Histogram // ack histograms of instances' earlier lives

	cancel context.CancelFunc
	wg     sync.WaitGroup // the proxy and the simulators' servers
	closes []func()
}

// Close stops the instances (each drains), the proxies, the carriers and Redis.
func (s *Stack) Close() {
	for _, in := range s.Instances {
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

// Start starts the stack, writing the instances' logs to dir, and configures both carriers
// on every instance.
func Start(ctx context.Context, o Options, dir string) (_ *Stack, err error) {
	s := &Stack{client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 120 * time.Second}}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel

	// Redis: appendfsync always, so "nothing acknowledged is lost" holds across the stop.
	if s.Redis, err = redistest.StartProcess(true); err != nil {
		return nil, err
	}
	s.closes = append(s.closes, s.Redis.Close)

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
		if o.Handover {
			// No restart is coming: what is sent to the stopped instance fails at once (502),
			// as at a load balancer with no backend left, instead of waiting for it.
			door.Hold = 0
		}
		public, err := listen(door)
		if err != nil {
			return nil, err
		}
		s.Doors = append(s.Doors, door)
		s.Instances = append(s.Instances, &Instance{Name: name, Addr: addr, Public: public, bin: o.Bin,
			Log: filepath.Join(dir, name+".log"), env: []string{
				"SWITCHBOARD_ADDR=" + addr,
				"SWITCHBOARD_PUBLIC_URL=" + public,
				"REDIS_URL=" + s.Redis.URL(),
				"SWITCHBOARD_ADMIN_TOKEN=" + AdminToken,
				"SWITCHBOARD_LOG_LEVEL=" + o.LogLevel,
				"SWITCHBOARD_DRAIN_TIMEOUT=" + DrainTimeout.String(),
				"SWITCHBOARD_WRAP_UP=" + o.WrapUp.String(),
				"SWITCHBOARD_RING_TIMEOUT=" + agentRingTimeout.String(),
				"SWITCHBOARD_QUEUE_TIMEOUT=" + o.QueueTimeout.String(),
				"SWITCHBOARD_RECONCILE_AFTER=" + o.ReconcileAfter.String(),
			}})
	}
	s.LB = proxy.New(backends...)
	if s.LBURL, err = listen(s.LB); err != nil {
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
	base := sim.Config{Ring: o.Ring, HangupAfter: o.Talk, Faults: o.Faults, WatchHz: o.WatchHz}
	pcfg, scfg := base, base
	pcfg.Seed, scfg.Seed = 1, 2
	pcfg.TwilioVoiceURL = s.Instances[0].Public + "/webhooks/primary/voice"
	pcfg.TwilioStatusURL = s.Instances[0].Public + "/webhooks/primary/status"
	scfg.TelnyxWebhookURL = s.Instances[1].Public + "/webhooks/secondary/events"
	if o.Handover {
		// Every call lands on sb1, the instance that is stopped.
		scfg.TelnyxWebhookURL = s.Instances[0].Public + "/webhooks/secondary/events"
	}
	var primaryURL, secondaryURL string
	if s.Primary, primaryURL, err = serve(pcfg); err != nil {
		return nil, err
	}
	if s.Secondary, secondaryURL, err = serve(scfg); err != nil {
		return nil, err
	}

	for _, in := range s.Instances {
		if err := in.start(ctx); err != nil {
			return nil, err
		}
	}

	breaker := map[string]any{"failure_threshold": FailureThreshold, "window": BreakerWindow.String(),
		"open_timeout": OpenTimeout.String(), "callback_deadline": CallbackDeadline.String()}
	carriers := map[string]map[string]any{
		"primary": {"kind": "twilio", "api_url": primaryURL, "account_sid": s.Primary.AccountSID(),
			"auth_token": s.Primary.AuthToken(), "from": "+15550100", "priority": 0, "enabled": true,
			"request_timeout": RequestTimeout.String(), "breaker": breaker},
		"secondary": {"kind": "telnyx", "api_url": secondaryURL, "api_key": s.Secondary.TelnyxAPIKey(),
			"connection_id": s.Secondary.ConnectionID(), "public_key": s.Secondary.PublicKeyBase64(),
			"from": "+15550101", "priority": 1, "enabled": true,
			"request_timeout": RequestTimeout.String(), "breaker": breaker},
	}
	for _, id := range []string{"primary", "secondary"} {
		code, body, err := s.Do(ctx, s.Instances[0].URL(), http.MethodPut, "/api/admin/carriers/"+id, carriers[id])
		if err == nil && code >= 300 {
			err = fmt.Errorf("answered %d %s", code, body)
		}
		if err != nil {
			return nil, fmt.Errorf("configure carrier %s: %w", id, err)
		}
	}
	// Every instance must know both carriers before the first call.
	for _, in := range s.Instances {
		err := rig.WaitFor(ctx, 10*time.Second, func() bool {
			var list struct {
				Carriers []struct{ ID string } `json:"carriers"`
			}
			code, body, err := s.Do(ctx, in.URL(), http.MethodGet, "/api/admin/carriers", nil)
			return err == nil && code == 200 && json.Unmarshal(body, &list) == nil && len(list.Carriers) == 2
		})
		if err != nil {
			return nil, fmt.Errorf("%s did not load the carriers: %w", in.Name, err)
		}
	}
	return s, nil
}

// Do sends an admin-token request to base (an instance or the proxy).
func (s *Stack) Do(ctx context.Context, base, method, path string, body any) (int, []byte, error) {
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
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }() // the status is what counts
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// NamedProxy is a proxy with the name the report gives it.
type NamedProxy struct {
	Name string
	P    *proxy.Proxy
}

// Proxies are the load balancer and the front doors.
func (s *Stack) Proxies() []NamedProxy {
	out := []NamedProxy{{"load balancer", s.LB}}
	for i, d := range s.Doors {
		out = append(out, NamedProxy{s.Instances[i].Name + "'s front door", d})
	}
	return out
}

// PreStop is how long the load balancer has the instance out of rotation before it is sent
// SIGTERM, as a Kubernetes PreStop sleep gives load balancers time to stop sending to a pod:
// Switchboard closes its idle keep-alive connections as soon as it is told to stop, and a
// request the balancer writes on one of them at that moment fails.
const PreStop = time.Second

// Restart restarts instance i the way an orchestrator does: out of the load balancer's
// rotation, SIGTERM (the instance drains), started again on the same address, back in
// rotation once ready. Its front door holds carriers' requests meanwhile.
func (s *Stack) Restart(ctx context.Context, i int) error {
	in, b := s.Instances[i], s.LB.Backends()[i]
	b.Drain(true)
	defer b.Drain(false)
	sleep(ctx, PreStop)
	s.retire(s.scrapeOne(ctx, in)) // its counters start again from zero
	in.stop()
	return in.start(ctx)
}

// Kill kills instance i with SIGKILL, as a crash or an OOM kill would: no drain, nothing
// finished. The load balancer takes it out of rotation (its health checks fail), and an
// orchestrator starts it again after down. killedAt is when the signal went.
func (s *Stack) Kill(ctx context.Context, i int, down time.Duration) (killedAt time.Time, err error) {
	in, b := s.Instances[i], s.LB.Backends()[i]
	s.retire(s.scrapeOne(ctx, in)) // its counters die with it
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	if cmd != nil {
		in.cpu += rig.CPUTime(cmd.Process.Pid)
	}
	in.mu.Unlock()
	if cmd == nil {
		return time.Time{}, fmt.Errorf("%s is not running", in.Name)
	}
	killedAt = time.Now()
	_ = cmd.Process.Signal(syscall.SIGKILL) // a crash on purpose; it may have exited already, which exited tells
	<-exited
	b.Drain(true)
	defer b.Drain(false)
	sleep(ctx, down)
	return killedAt, in.start(ctx)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Carriers are the two simulated carriers by their Switchboard carrier id.
func (s *Stack) Carriers() map[string]*sim.Carrier {
	return map[string]*sim.Carrier{"primary": s.Primary, "secondary": s.Secondary}
}
