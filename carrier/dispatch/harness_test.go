package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// scripted is a Twilio-compatible carrier whose answers a test scripts. When it accepts a
// call and callbacks are on, it "calls back" by storing the initiated event as our webhooks
// would, through its own store client (any instance may receive a callback).
type scripted struct {
	t        *testing.T
	srv      *httptest.Server
	st       *carrierdb.Store
	id       string
	status   atomic.Int64 // HTTP status to answer; 0 or 201 accepts
	body     atomic.Value // string: error body for a non-2xx status
	hang     atomic.Bool  // never answer until the request's context ends
	callback atomic.Bool
	placed   atomic.Int64 // requests received
	mu       sync.Mutex
	to       []string     // numbers of the calls it accepted, in order
	forms    []url.Values // the requests of the calls it accepted, in order
	work     sync.WaitGroup
}

func newScripted(t *testing.T, st *carrierdb.Store, id string) *scripted {
	s := &scripted{t: t, st: st, id: id}
	s.callback.Store(true)
	s.body.Store(`upstream unavailable`)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() { s.srv.Close(); s.work.Wait() })
	return s
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/Calls.json") {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodGet {
		// The orphan lookup after a maybe-created failure: a failed request created nothing.
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"calls":[]}`))
		return
	}
	r.ParseForm()
	s.placed.Add(1)
	if s.hang.Load() {
		<-r.Context().Done()
		return
	}
	if st := int(s.status.Load()); st != 0 && st != http.StatusCreated {
		w.WriteHeader(st)
		w.Write([]byte(s.body.Load().(string)))
		return
	}
	s.mu.Lock()
	s.to = append(s.to, r.PostForm.Get("To"))
	s.forms = append(s.forms, r.PostForm)
	s.mu.Unlock()
	var b [16]byte
	rand.Read(b[:])
	sid := "CA" + hex.EncodeToString(b[:])
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"sid": sid, "status": "queued"})
	if !s.callback.Load() {
		return
	}
	u, _ := url.Parse(r.PostForm.Get("StatusCallback"))
	callID := u.Query().Get("sb_call")
	s.work.Go(func() {
		time.Sleep(5 * time.Millisecond)
		e := call.Event{ID: sid + ":initiated", CallID: callID, Carrier: s.id, CarrierCallID: sid, State: call.Initiated}
		if _, err := s.st.Apply(context.Background(), e); err != nil {
			s.t.Errorf("callback not stored: %v", err)
		}
	})
}

func (s *scripted) dialled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.to...)
}

func (s *scripted) config(priority int, tweak func(*carrier.Config)) carrier.Config {
	c := carrier.Config{ID: s.id, Kind: carrier.Twilio, APIURL: s.srv.URL, AccountSID: "AC0123456789abcdef0123456789abcdef",
		AuthToken: "token-0123456789", From: "+15550100", Priority: priority, Enabled: true,
		RequestTimeout: carrier.Duration(500 * time.Millisecond),
		Breaker: carrier.BreakerSettings{FailureThreshold: 3, Window: carrier.Duration(10 * time.Second), BucketPeriod: carrier.Duration(time.Second),
			OpenTimeout: carrier.Duration(time.Second), CallbackDeadline: carrier.Duration(time.Second)}}
	if tweak != nil {
		tweak(&c)
	}
	return c
}

// instance is one Switchboard's outbound side: its own store client, registry, breakers,
// placer and carrier actions (whose runner may be left stopped), running until the test ends.
type instance struct {
	st       *carrierdb.Store
	reg      *carrier.Registry
	breakers *Breakers
	router   *Router
	placer   *Placer
	actions  *Actions
	metrics  *Metrics
}

func newInstance(t *testing.T, ns string) *instance {
	t.Helper()
	return newInstanceOn(t, openStore(t, ns))
}

func newInstanceOn(t *testing.T, st *carrierdb.Store) *instance {
	t.Helper()
	return newInstanceAt(t, st, "http://127.0.0.1:9")
}

// newInstanceAt is an instance whose callback URLs point at publicURL.
func newInstanceAt(t *testing.T, st *carrierdb.Store, publicURL string) *instance {
	t.Helper()
	return newInstanceRunning(t, st, publicURL, true)
}

// newInstanceRunning is newInstanceAt whose actions runner runs only if runActions: an
// instance that dies before doing the jobs it stored.
func newInstanceRunning(t *testing.T, st *carrierdb.Store, publicURL string, runActions bool) *instance {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	in := &instance{st: st, reg: carrier.NewRegistry(st, carrier.NewHTTPClient(), log)}
	if err := in.reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	in.breakers = NewBreakers(st, in.reg, BreakerOptions{Log: log})
	in.router = NewRouter(in.reg, in.breakers, nil)
	in.placer = NewPlacer(PlacerDeps{Store: st, Registry: in.reg, Breakers: in.breakers, Router: in.router,
		PublicURL: publicURL, Log: log})
	in.metrics = NewMetrics(nil)
	in.actions = NewActions(ActionDeps{Store: st, Registry: in.reg, Metrics: in.metrics, Log: log,
		Instance: in.breakers.Instance(), Poll: 20 * time.Millisecond, Lease: 2 * time.Second, Backoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { in.reg.Watch(ctx) })
	wg.Go(func() { in.breakers.Run(ctx) })
	wg.Go(func() { in.placer.Run(ctx) })
	if runActions {
		wg.Go(func() { in.actions.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return in
}

func (in *instance) put(t *testing.T, cfgs ...carrier.Config) {
	t.Helper()
	for _, c := range cfgs {
		if _, err := in.reg.Put(context.Background(), c, "admin@test"); err != nil {
			t.Fatal(err)
		}
	}
}

func attemptsOf(c call.Call) []string {
	var out []string
	for _, h := range c.History {
		if strings.Contains(h.EventID, ":attempt:") {
			out = append(out, h.Detail)
		}
	}
	return out
}

func ringOnce(t *testing.T, carriers ...*scripted) {
	t.Helper()
	seen := map[string]string{}
	for _, c := range carriers {
		for _, to := range c.dialled() {
			if other, ok := seen[to]; ok {
				t.Errorf("%s was dialled on %s and on %s", to, other, c.id)
			}
			seen[to] = c.id
		}
	}
}

var numbers atomic.Int64

// nextNumber is a fresh callee for each call, so a number dialled twice means a call rang twice.
func nextNumber() string { return fmt.Sprintf("+1555%07d", 1000000+numbers.Add(1)*10) }
