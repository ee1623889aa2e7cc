package delivery_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
)

// receiver answers every request with the next of its statuses (204 once they run out)
// and keeps the X-N header of each request in arrival order.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []string
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rv.mu.Lock()
	rv.got = append(rv.got, r.Header.Get("X-N"))
	status := http.StatusNoContent
	if len(rv.statuses) > 0 {
		status, rv.statuses = rv.statuses[0], rv.statuses[1:]
	}
	rv.mu.Unlock()
	if status >= 300 && status < 400 {
		w.Header().Set("Location", "/elsewhere")
	}
	w.WriteHeader(status)
}

func (rv *receiver) arrivals() []string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return slices.Clone(rv.got)
}

// results collects what a sender reports about callbacks.
type results struct {
	mu  sync.Mutex
	all []delivery.Result
}

func (rs *results) record(r delivery.Result) {
	rs.mu.Lock()
	rs.all = append(rs.all, r)
	rs.mu.Unlock()
}

func (rs *results) list() []delivery.Result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.all)
}

func callback(url string, n int, rs *results) *delivery.Callback {
	return &delivery.Callback{
		Method: http.MethodPost, URL: url,
		Render: func(int) ([]byte, http.Header) {
			return nil, http.Header{"X-N": {strconv.Itoa(n)}}
		},
		Record: rs.record,
	}
}

// deliverAll queues callbacks 1..n to url, closes the queue and delivers it: Deliver returns
// once every callback is out.
func deliverAll(t *testing.T, s *delivery.Sender, url string, n int, rs *results) {
	t.Helper()
	q := delivery.NewQueue()
	for i := 1; i <= n; i++ {
		q.Push(callback(url, i, rs))
	}
	q.Close()
	s.Deliver(context.Background(), q)
}

func TestDeliverInOrderAndReorderInPairs(t *testing.T) {
	for _, tt := range []struct {
		reorder bool
		n       int
		want    []string
	}{
		{false, 4, []string{"1", "2", "3", "4"}},
		{true, 4, []string{"2", "1", "4", "3"}},
		// The last one is held until the queue closes, then sent.
		{true, 3, []string{"2", "1", "3"}},
	} {
		rv := &receiver{}
		srv := httptest.NewServer(rv)
		s := delivery.New(delivery.Options{Faults: func() delivery.Faults { return delivery.Faults{Reorder: tt.reorder} }})
		var rs results
		deliverAll(t, s, srv.URL, tt.n, &rs)
		s.Close()
		srv.Close()
		if got := rv.arrivals(); !slices.Equal(got, tt.want) {
			t.Errorf("reorder %v, %d callbacks: arrived %v, want %v", tt.reorder, tt.n, got, tt.want)
		}
		if got := len(rs.list()); got != tt.n {
			t.Errorf("reorder %v: %d results, want %d", tt.reorder, got, tt.n)
		}
	}
}

// A busy answer is retried twice with RetryBusy (Telnyx) and not at all without (Twilio).
func TestRetryBusy(t *testing.T) {
	for _, busy := range []bool{false, true} {
		rv := &receiver{statuses: []int{503, 429, 503}}
		srv := httptest.NewServer(rv)
		s := delivery.New(delivery.Options{})
		var rs results
		q := delivery.NewQueue()
		cb := callback(srv.URL, 1, &rs)
		cb.RetryBusy = busy
		q.Push(cb)
		q.Close()
		s.Deliver(context.Background(), q)
		s.Close()
		srv.Close()
		var got []int
		for _, r := range rs.list() {
			got = append(got, r.Status)
		}
		want := []int{503}
		if busy {
			want = []int{503, 429, 503}
		}
		if !slices.Equal(got, want) {
			t.Errorf("RetryBusy %v: statuses %v, want %v", busy, got, want)
		}
	}
}

// A redirect is a failed delivery: told to Redirected, never followed, not retried.
func TestRedirectIsNotFollowed(t *testing.T) {
	rv := &receiver{statuses: []int{301}}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	var redirects []string
	s := delivery.New(delivery.Options{Redirected: func(url string, status int, location string) {
		redirects = append(redirects, strconv.Itoa(status)+" "+location)
	}})
	defer s.Close()
	var rs results
	deliverAll(t, s, srv.URL, 1, &rs)
	if got := rs.list(); len(got) != 1 || got[0].Acked || got[0].Status != 301 {
		t.Errorf("results %+v, want one unacknowledged 301", got)
	}
	if !slices.Equal(redirects, []string{"301 /elsewhere"}) || len(rv.arrivals()) != 1 {
		t.Errorf("redirects %v, %d requests", redirects, len(rv.arrivals()))
	}
}

// A failed connection is retried once.
func TestConnectFailureRetriedOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	_ = l.Close() // nothing listens there now: every connection is refused
	s := delivery.New(delivery.Options{})
	defer s.Close()
	var rs results
	deliverAll(t, s, url, 1, &rs)
	got := rs.list()
	if len(got) != 2 || got[0].Attempt != 1 || got[1].Attempt != 2 {
		t.Fatalf("results %+v, want attempts 1 and 2", got)
	}
	for _, r := range got {
		if r.Acked || !delivery.IsConnectError(r.Err) {
			t.Errorf("attempt %d: acked %v, err %v", r.Attempt, r.Acked, r.Err)
		}
	}
}

// An outage drops every callback unsent; a duplicate fault sends each twice.
func TestDropAndDuplicate(t *testing.T) {
	rv := &receiver{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	for _, tt := range []struct {
		faults   delivery.Faults
		requests int
	}{
		{delivery.Faults{Out: true}, 0},
		{delivery.Faults{DropRate: 1}, 0},
		{delivery.Faults{DuplicateRate: 1}, 4},
	} {
		before := len(rv.arrivals())
		s := delivery.New(delivery.Options{
			Faults: func() delivery.Faults { return tt.faults },
			Chance: func(p float64) bool { return p >= 1 },
		})
		var rs results
		deliverAll(t, s, srv.URL, 2, &rs)
		s.Close()
		if got := len(rv.arrivals()) - before; got != tt.requests {
			t.Errorf("%+v: %d requests, want %d", tt.faults, got, tt.requests)
		}
		for _, r := range rs.list() {
			if dropped := tt.requests == 0; r.Dropped != dropped || (!dropped && !r.Acked) {
				t.Errorf("%+v: result %+v", tt.faults, r)
			}
		}
	}
}
