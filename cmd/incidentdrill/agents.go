package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/cmd/internal/rig"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// agentPool is the population of simulated agents: softphones that sign in through the load
// balancer as a browser would, each with a pion peer for its audio (agentsim.SimSoftphone), and
// answer the calls that ring them. When their instance goes away they sign in again, as the
// softphone page does.
type agentPool struct {
	s      *stack.Stack
	o      options
	engine *webrtc.Engine
	agents []*simAgent
	wg     sync.WaitGroup
}

// The tones: each simulated caller sends callerHz (the simulator's default), each agent
// agentHz; the hold tone (620 Hz) is neither.
const (
	callerHz = 1000
	agentHz  = 440
)

// simAgent is one agent and what it saw.
type simAgent struct {
	id, token string
	pool      *agentPool
	// home is where the agent first signs in (the load balancer, or in the hand-over mode
	// one instance's front door); it signs in again through the load balancer.
	home string
	// ear watches the callers' tone in what the agent hears, across its softphones.
	ear *agentsim.ToneWatch

	mu         sync.Mutex
	phone      *agentsim.SimSoftphone
	rang       int
	answered   map[string]time.Time // call id -> when the softphone showed it connected
	ended      tally                // calls ended, by reason
	errors     tally                // error messages, by code
	reconnects int
}

// think is how long an agent takes to pick up a ringing call.
const think = 200 * time.Millisecond

func startAgents(ctx context.Context, s *stack.Stack, o options) (*agentPool, error) {
	engine, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true})
	if err != nil {
		return nil, err
	}
	p := &agentPool{s: s, o: o, engine: engine}
	for i := range o.agents {
		id := fmt.Sprintf("agent-%02d", i+1)
		code, body, err := s.Do(ctx, s.LBURL, http.MethodPut, "/api/admin/agents/"+id, map[string]string{"name": "Drill agent " + id[6:]})
		var out struct {
			Token string `json:"token"`
		}
		if err == nil && (code != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Token == "") {
			err = fmt.Errorf("answered %d %s", code, body)
		}
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("create agent %s: %w", id, err)
		}
		home := s.LBURL
		if o.mode == "handover" {
			// Half on each instance, as a load balancer spreads them, but known: the
			// report says how many sessions the stopped instance had.
			home = s.Instances[i%2].Public
		}
		p.agents = append(p.agents, &simAgent{id: id, token: out.Token, pool: p, home: home, ear: agentsim.NewToneWatch(callerHz),
			answered: map[string]time.Time{}, ended: tally{}, errors: tally{}})
	}
	for _, a := range p.agents {
		phone, err := a.dial(ctx, a.home)
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("sign in %s: %w", a.id, err)
		}
		a.phone = phone
	}
	return p, nil
}

// run lets every agent take calls until ctx ends.
func (p *agentPool) run(ctx context.Context) {
	for _, a := range p.agents {
		p.wg.Go(func() { a.work(ctx) })
		p.wg.Go(func() { a.ping(ctx) })
	}
}

// stop signs every agent out and waits for them; run's ctx must have ended.
func (p *agentPool) stop() {
	p.wg.Wait()
	for _, a := range p.agents {
		if ph := a.current(); ph != nil {
			_ = ph.Close() // the drill is over; a close error changes no figure
		}
	}
	_ = p.engine.Close() // as above
}

func (a *simAgent) current() *agentsim.SimSoftphone {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phone
}

// dial signs the agent in at base and waits for its audio to connect.
func (a *simAgent) dial(ctx context.Context, base string) (*agentsim.SimSoftphone, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	phone, err := agentsim.DialSoftphone(ctx, base, a.token, agentsim.SimAgentOptions{ToneHz: agentHz, Engine: a.pool.engine, Watch: a.ear})
	if err != nil {
		return nil, err
	}
	if err := phone.Agent.WaitConnected(ctx); err != nil {
		_ = phone.Close() // could not sign in: the agent tries again with a new phone
		return nil, fmt.Errorf("audio: %w", err)
	}
	return phone, nil
}

// work answers what rings, and signs in again when the softphone's connection closes.
func (a *simAgent) work(ctx context.Context) {
	for {
		phone := a.current()
		m, err := phone.Expect(ctx, func(m agentsim.SoftphoneMessage) bool {
			switch m.Type {
			case "ringing", "call", "ended", "error", "closed":
				return true
			}
			return false
		})
		if err != nil {
			return // ctx ended
		}
		switch m.Type {
		case "ringing":
			a.mu.Lock()
			a.rang++
			a.mu.Unlock()
			if !sleep(ctx, think) {
				return
			}
			_ = phone.Send(map[string]any{"type": "answer", "call_id": m.CallID}) // a phone that lost its socket reconnects; the call is offered again
		case "call":
			if m.State == "in-progress" {
				a.mu.Lock()
				if _, ok := a.answered[m.CallID]; !ok {
					a.answered[m.CallID] = time.Now()
				}
				a.mu.Unlock()
			}
		case "ended":
			a.mu.Lock()
			a.ended[m.Reason]++
			a.mu.Unlock()
		case "error":
			a.mu.Lock()
			a.errors[m.Code]++
			a.mu.Unlock()
		case "closed":
			if !a.reconnect(ctx) {
				return
			}
		}
	}
}

// reconnect replaces a softphone whose connection closed, trying until it signs in or ctx
// ends.
func (a *simAgent) reconnect(ctx context.Context) bool {
	old := a.current()
	_ = old.Close() // replaced by a new phone; the old one is closed either way
	for backoff := 250 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		if phone, err := a.dial(ctx, a.pool.s.LBURL); err == nil {
			a.mu.Lock()
			a.phone = phone
			a.reconnects++
			a.mu.Unlock()
			return true
		}
		if !sleep(ctx, backoff) {
			return false
		}
	}
}

// ping keeps the session alive, as the page does: an instance drops a softphone silent for
// the presence TTL.
func (a *simAgent) ping(ctx context.Context) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = a.current().Send(map[string]any{"type": "ping"}) // a lost socket is found by the read loop, which reconnects
		}
	}
}

// presence is an agent's state as the admin API shows it.
type presence struct {
	ID       string `json:"id"`
	Presence struct {
		State   string     `json:"state"`
		Call    string     `json:"call"`
		Ringing string     `json:"ringing"`
		Until   *time.Time `json:"until"`
	} `json:"presence"`
}

// stuck waits, for at most within, until every agent is available with no call and nothing
// ringing, which is where an agent must be once every call has ended and its wrap-up passed;
// it returns the agents that are not, with their state.
func (p *agentPool) stuck(ctx context.Context, within time.Duration) []string {
	var out []string
	_ = rig.WaitFor(ctx, within, func() bool { // a timeout is the answer too: the agents still stuck are returned
		out = out[:0]
		code, body, err := p.s.Do(ctx, p.s.LBURL, http.MethodGet, "/api/admin/agents", nil)
		var list struct {
			Agents []presence `json:"agents"`
		}
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &list) != nil {
			out = append(out, fmt.Sprintf("the agents could not be read: %d %v", code, err))
			return false
		}
		for _, a := range list.Agents {
			pr := a.Presence
			if pr.State != "available" || pr.Call != "" || pr.Ringing != "" {
				s := a.ID + ": " + pr.State
				if pr.Call != "" {
					s += " on call " + pr.Call
				}
				if pr.Ringing != "" {
					s += ", ringing for " + pr.Ringing
				}
				out = append(out, s)
			}
		}
		return len(out) == 0
	})
	slices.Sort(out)
	return out
}

// answeredBy says which agent answered callID, if any.
func (p *agentPool) answeredBy(callID string) string {
	for _, a := range p.agents {
		a.mu.Lock()
		_, ok := a.answered[callID]
		a.mu.Unlock()
		if ok {
			return a.id
		}
	}
	return ""
}

// summary sums what the agents saw.
func (p *agentPool) summary() (rang, answered, reconnects int, ended, errors tally) {
	ended, errors = tally{}, tally{}
	for _, a := range p.agents {
		a.mu.Lock()
		rang += a.rang
		answered += len(a.answered)
		reconnects += a.reconnects
		for k, v := range a.ended {
			ended[k] += v
		}
		for k, v := range a.errors {
			errors[k] += v
		}
		a.mu.Unlock()
	}
	return rang, answered, reconnects, ended, errors
}
