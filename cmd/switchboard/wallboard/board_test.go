package wallboard

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// Every goroutine the board, its streams and the tests start must be gone at the end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

const adminToken = "wallboard-test-admin-token-0123"

type fixture struct {
	t     *testing.T
	st    *agentdb.Store
	board *Board
	srv   *httptest.Server
	redis *redistest.Server
}

// newFixture serves the board's two routes as routes.go mounts them, on a Redis of the
// test's own (so it can be stopped), with the board running until the test ends.
func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	return newFixtureWith(t, o, func(*store.Redis, *Deps) {}, func(*httptest.Server) {})
}

// newFixtureWith is newFixture with the board's deps added to (on the fixture's store
// client) before the board is made, and the server set up before it starts.
func newFixtureWith(t *testing.T, o Options, deps func(*store.Redis, *Deps), server func(*httptest.Server)) *fixture {
	t.Helper()
	redis := redistest.NewServer(t)
	log := slog.New(slog.DiscardHandler)
	rs := storetest.Open(t, redis.URL(), redistest.Namespace(t))
	st := agentdb.New(rs)
	d := Deps{Store: st, Log: log}
	deps(rs, &d)
	board := New(d, o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { board.Run(ctx) })
	e := echo.New()
	e.HTTPErrorHandler = api.HTTPErrorHandler(log)
	apiDeps := api.Deps{AdminToken: adminToken, Agents: st, Log: log}
	e.POST("/api/wallboard/ticket", board.HandleTicket(), api.RequireStaff(apiDeps))
	e.GET("/api/wallboard/stream", board.HandleStream())
	srv := httptest.NewUnstartedServer(e)
	server(srv)
	srv.Start()
	t.Cleanup(func() {
		board.Close() // as the server's shutdown does: streams end, then the server can stop
		srv.Close()
		cancel()
		wg.Wait()
	})
	return &fixture{t: t, st: st, board: board, srv: srv, redis: redis}
}

func (f *fixture) agent(id string, role agentdb.Role) string {
	f.t.Helper()
	token := agentdb.NewAgentToken(id)
	if _, _, err := f.st.PutAgent(context.Background(), id, id, token, true); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SetAgentRole(context.Background(), id, role); err != nil {
		f.t.Fatal(err)
	}
	return token
}

// ticket asks for a stream ticket with bearer; it returns the status and the stream's URL.
func (f *fixture) ticket(bearer string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/api/wallboard/ticket", nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		URL string `json:"url"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.URL
}

type event struct {
	name string
	data string
}

// stream is one tab's EventSource, read on a goroutine the test's cleanup ends.
type stream struct {
	status int
	events chan event
}

// open opens the stream at path; with a non-2xx answer no events are read.
func (f *fixture) open(path string) *stream {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	s := &stream{status: resp.StatusCode, events: make(chan event, 256)}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		return s
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		f.t.Errorf("content type %q", ct)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					s.events <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	})
	f.t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

// next waits for the next event named name (others are skipped) and returns its data.
func (s *stream) next(t *testing.T, name string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended waiting for %q", name)
			}
			if ev.name == name {
				return ev.data
			}
		case <-timeout:
			t.Fatalf("no %q event", name)
		}
	}
}

// floor waits for a floor that satisfies cond.
func (s *stream) floor(t *testing.T, what string, cond func(Floor) bool) Floor {
	t.Helper()
	for {
		var got struct {
			At    int64 `json:"at"`
			Floor Floor `json:"floor"`
		}
		if err := json.Unmarshal([]byte(s.next(t, "floor")), &got); err != nil {
			t.Fatal(err)
		}
		if got.At == 0 {
			t.Fatal("a floor without the server's time")
		}
		if cond(got.Floor) {
			return got.Floor
		}
		t.Logf("%s: not yet: %+v", what, got.Floor)
	}
}

func agentState(f Floor, id string) string {
	for _, a := range f.Agents {
		if a.ID == id {
			return a.State
		}
	}
	return ""
}

// TestStreamShowsChangesAsTheyHappen: the admin's stream gets the floor, then an agent signing
// in and going away, a queued caller, and a live call, each pushed as it happens.
func TestStreamShowsChangesAsTheyHappen(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	f.agent("ann", agentdb.RoleAgent)
	code, url := f.ticket(adminToken)
	if code != http.StatusOK || !strings.HasPrefix(url, "/api/wallboard/stream?ticket=") {
		t.Fatalf("ticket: %d %q", code, url)
	}
	s := f.open(url)
	if s.status != http.StatusOK {
		t.Fatalf("stream: %d", s.status)
	}
	s.floor(t, "ann offline", func(fl Floor) bool { return agentState(fl, "ann") == "offline" })

	p := agentdb.Presence{Agent: "ann", State: agentdb.Available, Since: time.Now(), Session: "s1", Instance: "i1", URL: "http://i1"}
	if _, err := f.st.Connect(ctx, p, time.Minute); err != nil {
		t.Fatal(err)
	}
	s.floor(t, "ann available", func(fl Floor) bool { return agentState(fl, "ann") == "available" })
	next := p
	next.State, next.Since = agentdb.Away, time.Now()
	if err := f.st.SetState(ctx, "s1", agentdb.Available, "", next, time.Minute); err != nil {
		t.Fatal(err)
	}
	s.floor(t, "ann away", func(fl Floor) bool { return agentState(fl, "ann") == "away" })

	id := store.NewCallID()
	if _, err := f.st.Apply(ctx, call.Event{ID: "e1", CallID: id, State: call.Ringing, Direction: call.Inbound,
		From: "+15550001", To: "+15550100", Carrier: "tw", CarrierCallID: "CA1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Route(ctx, agentdb.Offer{Call: id, Direction: call.Inbound, From: "+15550001", To: "+15550100",
		Carrier: "tw", Holder: "i1"}, time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	got := s.floor(t, "a queued caller and its call", func(fl Floor) bool { return fl.Queue.Waiting == 1 && len(fl.Calls) == 1 })
	if q := got.Queue.Calls[0]; q.Call != id || q.From != "+15550001" || q.State != "queued" || got.Queue.LongestSince == nil {
		t.Fatalf("queue %+v", got.Queue)
	}
	if c := got.Calls[0]; c.ID != id || c.Direction != "inbound" || c.Number != "+15550001" || c.Carrier != "tw" || c.State != "ringing" {
		t.Fatalf("live call %+v", c)
	}
	if _, err := f.st.EndOffer(ctx, id); err != nil {
		t.Fatal(err)
	}
	s.floor(t, "the caller gone from the queue", func(fl Floor) bool { return fl.Queue.Waiting == 0 })
}

// TestTicketsAreSingleUseAndForStaff: a ticket opens one stream; used again, made up or
// expired it is 401; an agent's token gets no ticket; a supervisor's does.
func TestTicketsAreSingleUseAndForStaff(t *testing.T) {
	f := newFixture(t, Options{TicketTTL: 200 * time.Millisecond})
	agentTok := f.agent("ann", agentdb.RoleAgent)
	supTok := f.agent("sue", agentdb.RoleSupervisor)

	_, url := f.ticket(supTok)
	if s := f.open(url); s.status != http.StatusOK {
		t.Fatalf("a supervisor's stream: %d", s.status)
	}
	if s := f.open(url); s.status != http.StatusUnauthorized {
		t.Fatalf("the same ticket again: %d, want 401", s.status)
	}
	if s := f.open("/api/wallboard/stream?ticket=" + store.NewTicket()); s.status != http.StatusUnauthorized {
		t.Fatalf("a made-up ticket: %d, want 401", s.status)
	}
	if s := f.open("/api/wallboard/stream"); s.status != http.StatusUnauthorized {
		t.Fatalf("no ticket: %d, want 401", s.status)
	}
	_, late := f.ticket(adminToken)
	ticket := strings.TrimPrefix(late, "/api/wallboard/stream?ticket=")
	// Watched without using it, which would spend it: the ticket's record goes by its TTL.
	redistest.Eventually(t, 5*time.Second, "the ticket to expire", func() bool {
		return f.st.Sub().Client().Exists(context.Background(), f.st.Sub().Namespace()+":ticket:"+hashOf(ticket)).Val() == 0
	})
	if s := f.open(late); s.status != http.StatusUnauthorized {
		t.Fatalf("an expired ticket: %d, want 401", s.status)
	}
	if code, _ := f.ticket(agentTok); code != http.StatusForbidden {
		t.Fatalf("an agent's ticket: %d, want 403", code)
	}
	if code, _ := f.ticket("nobody.0123"); code != http.StatusUnauthorized {
		t.Fatalf("a bad token's ticket: %d, want 401", code)
	}
}

// TestRevokedSupervisorIsCutOff: a supervisor's stream ends when its token is rotated, and a
// ticket it got before is refused once its role is taken away.
func TestRevokedSupervisorIsCutOff(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	supTok := f.agent("sue", agentdb.RoleSupervisor)
	_, url := f.ticket(supTok)
	s := f.open(url)
	s.next(t, "floor")
	if _, _, err := f.st.PutAgent(ctx, "sue", "sue", agentdb.NewAgentToken("sue"), true); err != nil {
		t.Fatal(err)
	}
	if bye := s.next(t, "bye"); !strings.Contains(bye, "revoked") {
		t.Fatalf("bye %s", bye)
	}

	fresh := agentdb.NewAgentToken("sue")
	if _, _, err := f.st.PutAgent(ctx, "sue", "sue", fresh, true); err != nil {
		t.Fatal(err)
	}
	_, url = f.ticket(fresh)
	if err := f.st.SetAgentRole(ctx, "sue", agentdb.RoleAgent); err != nil {
		t.Fatal(err)
	}
	if s := f.open(url); s.status != http.StatusForbidden {
		t.Fatalf("a demoted supervisor's ticket: %d, want 403", s.status)
	}
}

// TestSlowTabIsCutOffAndOthersGoOn: a tab that reads nothing is cut off once its queue is
// full; the board and another tab carry on.
func TestSlowTabIsCutOffAndOthersGoOn(t *testing.T) {
	f := newFixture(t, Options{Queue: 2})
	ctx := context.Background()
	fast := f.open(mustTicket(f))
	fast.next(t, "floor")
	slow, err := f.board.join("", "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.board.leave(slow)
	for i := range 5 {
		if _, err := f.st.Route(ctx, agentdb.Offer{Call: "CL" + string(rune('a'+i)), Direction: call.Inbound, Holder: "h"}, time.Minute, time.Minute); err != nil {
			t.Fatal(err)
		}
		fast.floor(t, "the next caller", func(fl Floor) bool { return fl.Queue.Waiting == int64(i+1) })
	}
	select {
	case <-slow.gone:
		if slow.why != "slow" {
			t.Fatalf("cut off as %q", slow.why)
		}
	default:
		t.Fatal("a tab that read nothing is still served")
	}
}

// TestRedisDownIsReportedAndRecovers: with Redis stopped the stream says so and stays up;
// when Redis is back it says so and the floor moves again.
func TestRedisDownIsReportedAndRecovers(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.open(mustTicket(f))
	s.next(t, "floor")
	f.redis.Stop()
	if down := s.next(t, "storage"); !strings.Contains(down, `"ok":false`) || !strings.Contains(down, "showing the last known state") {
		t.Fatalf("storage down: %s", down)
	}
	f.redis.Start()
	if up := s.next(t, "storage"); !strings.Contains(up, `"ok":true`) {
		t.Fatalf("storage back: %s", up)
	}
	f.agent("ann", agentdb.RoleAgent)
	s.floor(t, "a new agent after the outage", func(fl Floor) bool { return agentState(fl, "ann") == "offline" })
}

// TestCloseEndsStreams: the server's shutdown ends every stream with a bye.
func TestCloseEndsStreams(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.open(mustTicket(f))
	s.next(t, "floor")
	f.board.Close()
	if bye := s.next(t, "bye"); !strings.Contains(bye, "stopping") {
		t.Fatalf("bye %s", bye)
	}
	if _, ok := <-s.events; ok {
		t.Fatal("the stream goes on after its bye")
	}
	if code, url := f.ticket(adminToken); code == http.StatusOK {
		if s := f.open(url); s.status != http.StatusServiceUnavailable {
			t.Fatalf("a stream after Close: %d, want 503", s.status)
		}
	}
}

func mustTicket(f *fixture) string {
	f.t.Helper()
	code, url := f.ticket(adminToken)
	if code != http.StatusOK {
		f.t.Fatalf("ticket: %d", code)
	}
	return url
}

func hashOf(ticket string) string {
	h := sha256.Sum256([]byte(ticket))
	return hex.EncodeToString(h[:])
}

// countingRates stands in for the callback counters: a rate that changes every time it is
// read, so every tick makes a new floor.
type countingRates struct {
	mu sync.Mutex
	n  float64
}

func (r *countingRates) CarrierRates(context.Context) (map[string]float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return map[string]float64{"tw": r.n}, nil
}

// TestStreamOutlivesTheServersTimeouts: the server's read and write timeouts (15 s in
// production, 500 ms here) bound whole requests; a stream goes on past them on one connection
// (without a deadline of its own per write, the first write after WriteTimeout fails).
func TestStreamOutlivesTheServersTimeouts(t *testing.T) {
	f := newFixtureWith(t, Options{Tick: 200 * time.Millisecond}, func(rs *store.Redis, d *Deps) {
		reg := carrier.NewRegistry(carrierdb.New(rs), nil, d.Log)
		if _, err := reg.Put(context.Background(), carrier.Config{ID: "tw", Kind: carrier.Twilio, APIURL: "http://127.0.0.1:9",
			AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "secret", From: "+15550100", Enabled: true}, "test"); err != nil {
			t.Fatal(err)
		}
		d.Carriers, d.Rates = reg, &countingRates{}
	}, func(srv *httptest.Server) {
		srv.Config.ReadTimeout, srv.Config.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond
	})

	s := f.open(mustTicket(f))
	first := time.Now()
	last := 0.0
	for time.Since(first) < 2*time.Second {
		fl := s.floor(t, "a new rate", func(fl Floor) bool {
			return len(fl.Carriers) == 1 && fl.Carriers[0].CallbacksPerS != nil && *fl.Carriers[0].CallbacksPerS > last
		})
		last = *fl.Carriers[0].CallbacksPerS
	}
}
