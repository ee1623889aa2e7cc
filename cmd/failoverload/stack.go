package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/cmd/internal/rig"
)

const adminToken = "failoverload-admin-token-0123456789"

// stack is one Redis, two simulated carriers and one Switchboard, all on 127.0.0.1.
type stack struct {
	primary, secondary *sim.Carrier
	base               string // Switchboard's URL
	client             *http.Client
	stops              []func()
}

func (s *stack) close() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

func startStack(ctx context.Context, o options, stderr io.Writer) (*stack, error) {
	s := &stack{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()

	// Redis: a throwaway redis-server, so every run starts with no breaker state.
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not on PATH (Debian: apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "failoverload-redis-")
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, func() { _ = os.RemoveAll(dir) }) // a temporary directory left behind is harmless
	redisAddr, err := rig.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(redisAddr)
	redis := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	if err := redis.Start(); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, func() { _ = redis.Process.Kill(); _ = redis.Wait() }) // killed on purpose: its exit says nothing
	if err := rig.WaitFor(ctx, 5*time.Second, func() bool {
		c, err := net.Dial("tcp", redisAddr)
		if err == nil {
			_ = c.Close() // the set-up failed: that error is the one to report
		}
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("redis-server did not start: %w", err)
	}

	// The carriers.
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
		s.stops = append(s.stops, func() { _ = srv.Close(); _ = c.Close() }) // the run is over; close errors change no figure
		return c, url, nil
	}
	simCfg := sim.Config{Ring: o.ring, HangupAfter: o.hangupAfter, Seed: 1}
	var primaryURL, secondaryURL string
	if s.primary, primaryURL, err = serve(simCfg); err != nil {
		return nil, err
	}
	if s.secondary, secondaryURL, err = serve(simCfg); err != nil {
		return nil, err
	}

	// Switchboard.
	addr, err := rig.FreeAddr()
	if err != nil {
		return nil, err
	}
	level := "error"
	if o.logs {
		level = "warn"
	}
	sb := exec.Command(o.bin)
	sb.Env = append(os.Environ(), "SWITCHBOARD_ADDR="+addr, "REDIS_URL=redis://"+redisAddr,
		"SWITCHBOARD_ADMIN_TOKEN="+adminToken, "SWITCHBOARD_LOG_LEVEL="+level, "SWITCHBOARD_DRAIN_TIMEOUT=2s")
	sb.Stdout = io.Discard
	sb.Stderr = stderr
	if err := sb.Start(); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, func() {
		_ = sb.Process.Signal(os.Interrupt) // it may have exited already; Wait below tells
		done := make(chan struct{})
		go func() { _ = sb.Wait(); close(done) }() // stopped on purpose: its exit status says nothing
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = sb.Process.Kill() // it did not stop in time; it may have exited meanwhile
			<-done
		}
	})
	s.base = "http://" + addr
	if err := rig.WaitFor(ctx, 10*time.Second, func() bool {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			_ = resp.Body.Close() // only the status was wanted
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}); err != nil {
		return nil, fmt.Errorf("switchboard did not become ready: %w", err)
	}

	for id, cfg := range map[string]map[string]any{
		"primary": {"kind": "twilio", "api_url": primaryURL, "account_sid": s.primary.AccountSID(),
			"auth_token": s.primary.AuthToken(), "from": "+15550100", "priority": 0, "enabled": true,
			"request_timeout": o.requestTimeout.String()},
		"secondary": {"kind": "telnyx", "api_url": secondaryURL, "api_key": s.secondary.TelnyxAPIKey(),
			"connection_id": s.secondary.ConnectionID(), "public_key": s.secondary.PublicKeyBase64(),
			"from": "+15550101", "priority": 1, "enabled": true},
	} {
		if code, body, err := s.do(ctx, http.MethodPut, "/api/admin/carriers/"+id, cfg); err != nil || code >= 300 {
			return nil, fmt.Errorf("configure %s: %d %s %w", id, code, body, err)
		}
	}
	ok = true
	return s, nil
}

func (s *stack) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below; a close error changes nothing
	out, err := io.ReadAll(bufio.NewReader(resp.Body))
	return resp.StatusCode, out, err
}

// placed is one call's answer.
type placed struct {
	sent     time.Time
	latency  time.Duration
	status   int
	carrier  string
	attempts []string // attempt details, in order
	err      error
}

func (s *stack) place(ctx context.Context, to string) placed {
	p := placed{sent: time.Now()}
	code, body, err := s.do(ctx, http.MethodPost, "/api/calls", map[string]string{"to": to})
	p.latency, p.status, p.err = time.Since(p.sent), code, err
	var c struct {
		ID      string `json:"id"`
		Carrier string `json:"carrier"`
		History []struct {
			EventID string `json:"event_id"`
			Detail  string `json:"detail"`
		} `json:"history"`
		Call *struct {
			ID      string `json:"id"`
			Carrier string `json:"carrier"`
			History []struct {
				EventID string `json:"event_id"`
				Detail  string `json:"detail"`
			} `json:"history"`
		} `json:"call"`
	}
	if json.Unmarshal(body, &c) == nil {
		if c.Call != nil {
			c.ID, c.Carrier, c.History = c.Call.ID, c.Call.Carrier, c.Call.History
		}
		p.carrier = c.Carrier
		for _, h := range c.History {
			if strings.HasPrefix(h.EventID, c.ID+":attempt:") {
				p.attempts = append(p.attempts, h.Detail)
			}
		}
	}
	return p
}

func number(i int) string { return "+1555" + strconv.Itoa(2000000+i) + "0" }
