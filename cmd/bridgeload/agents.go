package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// agents is the far side of the calls: one simulated browser (agentsim.SimAgent) per call,
// in this process, or with -agents-process in a child process of their own, as browsers are
// never in the server's process.
type agents interface {
	// offer creates call i's agent and returns its SDP offer.
	offer(ctx context.Context, i int) (string, error)
	// accept gives agent i the server's answer and waits until it is connected.
	accept(ctx context.Context, i int, answer string) error
	// activate starts (or stops) agent i stamping and counting the frames it sends, from the
	// moment a bridge carries them.
	activate(i int, on bool) error
	// stats reports what every agent sent and received.
	stats(ctx context.Context) ([]agentStats, error)
	close() error
}

// agentStats is one agent's side of the measurement.
type agentStats struct {
	Sent  int64                  `json:"sent"`  // stamped frames sent
	Got   int64                  `json:"got"`   // stamped frames received, once each
	Dup   int64                  `json:"dup"`   // received more than once
	First int64                  `json:"first"` // wall-clock ns of the first one received
	Lat   webrtc.LatencySnapshot `json:"lat"`   // from the carrier's stamp to receipt
}

// localAgents runs the agents in this process.
type localAgents struct {
	engine *webrtc.Engine
	frames int // stamps available per direction

	mu     sync.Mutex
	agents map[int]*loadAgent
}

type loadAgent struct {
	sim    *agentsim.SimAgent
	out    *sender
	in     *arrival
	active atomic.Bool
}

func newLocalAgents(rtcp bool, frames int) (*localAgents, error) {
	// Each agent gets an ephemeral port, as separate browsers would. They cannot share a
	// mux: a UDP mux routes media by source address, and every peer behind another mux
	// would have the same one.
	e, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true, RTCPReports: rtcp})
	if err != nil {
		return nil, err
	}
	return &localAgents{engine: e, frames: frames, agents: map[int]*loadAgent{}}, nil
}

func (l *localAgents) offer(ctx context.Context, i int) (string, error) {
	voice := make([]byte, media.FrameSamples)
	_, _ = media.NewTone(440, 0.5).Read(voice) // a tone never runs out and never fails
	a := &loadAgent{out: &sender{}, in: newArrival(l.frames)}
	var err error
	a.sim, err = agentsim.NewSimAgent(agentsim.SimAgentOptions{
		Engine:      l.engine,
		RecordLimit: media.FrameSamples, // the load run reads arrivals, not recordings
		Source: func(frame []byte) {
			copy(frame, voice)
			if a.active.Load() {
				a.out.stamp(frame, l.frames)
			}
		},
		OnFrame: func(ulaw []byte, at time.Time) { a.in.frame(ulaw, at.UnixNano()) },
	})
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	l.agents[i] = a
	l.mu.Unlock()
	return a.sim.Offer(ctx)
}

func (l *localAgents) agent(i int) (*loadAgent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.agents[i]
	if a == nil {
		return nil, fmt.Errorf("no agent %d", i)
	}
	return a, nil
}

func (l *localAgents) accept(ctx context.Context, i int, answer string) error {
	a, err := l.agent(i)
	if err != nil {
		return err
	}
	if err := a.sim.Accept(answer); err != nil {
		return err
	}
	return a.sim.WaitConnected(ctx)
}

func (l *localAgents) activate(i int, on bool) error {
	a, err := l.agent(i)
	if err != nil {
		return err
	}
	a.active.Store(on)
	return nil
}

func (l *localAgents) stats(context.Context) ([]agentStats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := range l.agents {
		n = max(n, i+1)
	}
	out := make([]agentStats, n)
	for i, a := range l.agents {
		out[i] = agentStats{Sent: a.out.sent.Load(), Got: a.in.count.Load(), Dup: a.in.dup.Load(),
			First: a.in.first.Load(), Lat: a.in.lat.Snapshot()}
	}
	return out, nil
}

func (l *localAgents) close() error {
	l.mu.Lock()
	all := make([]*loadAgent, 0, len(l.agents))
	for _, a := range l.agents {
		all = append(all, a)
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, a := range all {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = a.sim.Close() // the agent is done; a close error changes no figure
		})
	}
	wg.Wait()
	return l.engine.Close()
}

// The agents' process speaks JSON lines on its standard input and output: requests carry an
// id, and each is answered with the same id, in any order.
type agentRequest struct {
	ID     int    `json:"id"`
	Op     string `json:"op"` // offer, accept, activate, stats
	Call   int    `json:"call"`
	SDP    string `json:"sdp,omitempty"`
	On     bool   `json:"on,omitempty"`
	RTCP   bool   `json:"rtcp,omitempty"`
	Frames int    `json:"frames,omitempty"`
}

type agentResponse struct {
	ID    int          `json:"id"`
	Err   string       `json:"err,omitempty"`
	SDP   string       `json:"sdp,omitempty"`
	Stats []agentStats `json:"stats,omitempty"`
}

// serveAgentsEnv, set in the environment, makes this binary the agents' process.
const serveAgentsEnv = "BRIDGELOAD_SERVE_AGENTS"

// serveAgents is the agents' process: it runs localAgents for requests on in until in ends.
func serveAgents(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	var first agentRequest
	if err := dec.Decode(&first); err != nil {
		return fmt.Errorf("agents: read the start request: %w", err)
	}
	if first.Op != "start" {
		return fmt.Errorf("agents: want a start request first, got %q", first.Op)
	}
	l, err := newLocalAgents(first.RTCP, first.Frames)
	if err != nil {
		return err
	}
	defer func() { _ = l.close() }() // the child is ending; its agents go with it
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	reply := func(r agentResponse) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = enc.Encode(r) // the parent reads until the pipe ends; a broken pipe means it has gone
	}
	reply(agentResponse{ID: first.ID})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var req agentRequest
		if err := dec.Decode(&req); err != nil {
			cancel()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		wg.Go(func() {
			r := agentResponse{ID: req.ID}
			var err error
			switch req.Op {
			case "offer":
				r.SDP, err = l.offer(ctx, req.Call)
			case "accept":
				err = l.accept(ctx, req.Call, req.SDP)
			case "activate":
				err = l.activate(req.Call, req.On)
			case "stats":
				r.Stats, err = l.stats(ctx)
			default:
				err = fmt.Errorf("unknown op %q", req.Op)
			}
			if err != nil {
				r.Err = err.Error()
			}
			reply(r)
		})
	}
}

// remoteAgents drives the agents' process.
type remoteAgents struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	enc     *json.Encoder
	nextID  int
	waiting map[int]chan agentResponse
}

func startRemoteAgents(rtcp bool, frames int) (*remoteAgents, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveAgentsEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the agents' process: %w", err)
	}
	r := &remoteAgents{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), waiting: map[int]chan agentResponse{}}
	go r.read(stdout)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.call(ctx, agentRequest{Op: "start", RTCP: rtcp, Frames: frames}); err != nil {
		_ = r.close() // start failed: that error is the one to report
		return nil, err
	}
	return r, nil
}

func (r *remoteAgents) read(stdout io.Reader) {
	dec := json.NewDecoder(bufio.NewReader(stdout))
	for {
		var resp agentResponse
		if err := dec.Decode(&resp); err != nil {
			// The process ended: nothing more will be answered.
			r.mu.Lock()
			for id, ch := range r.waiting {
				close(ch)
				delete(r.waiting, id)
			}
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		ch := r.waiting[resp.ID]
		delete(r.waiting, resp.ID)
		r.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
}

func (r *remoteAgents) call(ctx context.Context, req agentRequest) (agentResponse, error) {
	ch := make(chan agentResponse, 1)
	r.mu.Lock()
	r.nextID++
	req.ID = r.nextID
	r.waiting[req.ID] = ch
	err := r.enc.Encode(req)
	r.mu.Unlock()
	if err != nil {
		return agentResponse{}, fmt.Errorf("agents' process: %w", err)
	}
	select {
	case resp, ok := <-ch:
		switch {
		case !ok:
			return resp, errors.New("the agents' process ended")
		case resp.Err != "":
			return resp, errors.New(resp.Err)
		}
		return resp, nil
	case <-ctx.Done():
		return agentResponse{}, ctx.Err()
	}
}

func (r *remoteAgents) offer(ctx context.Context, i int) (string, error) {
	resp, err := r.call(ctx, agentRequest{Op: "offer", Call: i})
	return resp.SDP, err
}

func (r *remoteAgents) accept(ctx context.Context, i int, answer string) error {
	_, err := r.call(ctx, agentRequest{Op: "accept", Call: i, SDP: answer})
	return err
}

func (r *remoteAgents) activate(i int, on bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := r.call(ctx, agentRequest{Op: "activate", Call: i, On: on})
	return err
}

func (r *remoteAgents) stats(ctx context.Context) ([]agentStats, error) {
	resp, err := r.call(ctx, agentRequest{Op: "stats"})
	return resp.Stats, err
}

// close ends the agents' process: its input ends, it closes every agent and exits.
func (r *remoteAgents) close() error {
	_ = r.stdin.Close() // the child stops on end of input; a pipe already closed is the same
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill() // it did not stop in time; it may have exited meanwhile
		return <-exited
	}
}
