// Package agentpool is the incident drill's population of simulated agents: softphones that
// sign in as a browser would, each with a pion peer for its audio, answer the calls that
// ring them, and sign in again when their instance goes away. cmd/incidentdrill starts a
// pool on its stack and reads what the agents saw.
package agentpool

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/stack"
	"github.com/switchboard/switchboard/cmd/internal/rig"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// Pool is the population of simulated agents: softphones that sign in through the load
// balancer as a browser would, each with a pion peer for its audio (agentsim.SimSoftphone), and
// answer the calls that ring them. When their instance goes away they sign in again, as the
// softphone page does.
type Pool struct {
	s      *stack.Stack
	engine *webrtc.Engine
	Agents []*Agent
	wg     sync.WaitGroup
}

// Options say how many agents sign in, and where.
type Options struct {
	Count int
	// Homes are where agent i first signs in: Homes[i%len(Homes)]; the load balancer when
	// empty.
	Homes []string
}

// The tones: each simulated caller sends callerHz (the simulator's default), each agent
// AgentHz; the hold tone (620 Hz) is neither.
const (
	CallerHz = 1000
	AgentHz  = 440
)

// Agent is one agent and what it saw.
type Agent struct {
	ID    string
	token string
	pool  *Pool
	// Home is where the agent first signs in (the load balancer, or in the hand-over mode
	// one instance's front door); it signs in again through the load balancer.
	Home string
	// Ear watches the callers' tone in what the agent hears, across its softphones.
	Ear *agentsim.ToneWatch

	mu         sync.Mutex
	phone      *agentsim.SimSoftphone
	rang       int
	answered   map[string]time.Time // call id -> when the softphone showed it connected
	ended      map[string]int       // calls ended, by reason
	errors     map[string]int       // error messages, by code
	reconnects int
}

// think is how long an agent takes to pick up a ringing call.
const think = 200 * time.Millisecond

// Start creates the agents on the stack and signs each in; Run lets them take calls.
func Start(ctx context.Context, s *stack.Stack, o Options) (*Pool, error) {
	engine, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true})
	if err != nil {
		return nil, err
	}
	p := &Pool{s: s, engine: engine}
	for i := range o.Count {
		id := fmt.Sprintf("agent-%02d", i+1)
		code, body, err := s.Do(ctx, s.LBURL, http.MethodPut, "/api/admin/agents/"+id, map[string]string{"name": "Drill agent " + id[6:]})
		var out struct {
			Token string `json:"token"`
		}
		if err == nil && (code != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Token == "") {
			err = fmt.Errorf("answered %d %s", code, body)
		}
		if err != nil {
			p.Stop()
			return nil, fmt.Errorf("create agent %s: %w", id, err)
		}
		home := s.LBURL
		if len(o.Homes) > 0 {
			home = o.Homes[i%len(o.Homes)]
		}
		p.Agents = append(p.Agents, &Agent{ID: id, token: out.Token, pool: p, Home: home, Ear: agentsim.NewToneWatch(CallerHz),
			answered: map[string]time.Time{}, ended: map[string]int{}, errors: map[string]int{}})
	}
	for _, a := range p.Agents {
		phone, err := a.dial(ctx, a.Home)
		if err != nil {
			p.Stop()
			return nil, fmt.Errorf("sign in %s: %w", a.ID, err)
		}
		a.phone = phone
	}
	return p, nil
}

// Run lets every agent take calls until ctx ends.
func (p *Pool) Run(ctx context.Context) {
	for _, a := range p.Agents {
		p.wg.Go(func() { a.work(ctx) })
		p.wg.Go(func() { a.ping(ctx) })
	}
}

// Stop signs every agent out and waits for them; Run's ctx must have ended.
func (p *Pool) Stop() {
	p.wg.Wait()
	for _, a := range p.Agents {
		if ph := a.Current(); ph != nil {
			_ = ph.Close() // the drill is over; a close error changes no figure
		}
	}
	_ = p.engine.Close() // as above
}

// Current is the agent's softphone now.
func (a *Agent) Current() *agentsim.SimSoftphone {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.phone
}

// dial signs the agent in at base and waits for its audio to connect.
func (a *Agent) dial(ctx context.Context, base string) (*agentsim.SimSoftphone, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	phone, err := agentsim.DialSoftphone(ctx, base, a.token, agentsim.SimAgentOptions{ToneHz: AgentHz, Engine: a.pool.engine, Watch: a.Ear})
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
func (a *Agent) work(ctx context.Context) {
	for {
		phone := a.Current()
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
func (a *Agent) reconnect(ctx context.Context) bool {
	old := a.Current()
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
func (a *Agent) ping(ctx context.Context) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = a.Current().Send(map[string]any{"type": "ping"}) // a lost socket is found by the read loop, which reconnects
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

// Stuck waits, for at most within, until every agent is available with no call and nothing
// ringing, which is where an agent must be once every call has ended and its wrap-up passed;
// it returns the agents that are not, with their state.
func (p *Pool) Stuck(ctx context.Context, within time.Duration) []string {
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

// AnsweredBy says which agent answered callID, if any.
func (p *Pool) AnsweredBy(callID string) string {
	for _, a := range p.Agents {
		a.mu.Lock()
		_, ok := a.answered[callID]
		a.mu.Unlock()
		if ok {
			return a.ID
		}
	}
	return ""
}

// Summary sums what the agents saw.
func (p *Pool) Summary() (rang, answered, reconnects int, ended, errors map[string]int) {
	ended, errors = map[string]int{}, map[string]int{}
	for _, a := range p.Agents {
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

// Answered is when the agent's softphone showed each call it answered connected, by call id.
func (a *Agent) Answered() map[string]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.answered)
}

// Reconnects is how many times the agent signed in again.
func (a *Agent) Reconnects() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reconnects
}

// sleep waits for d or until ctx ends, and says whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
