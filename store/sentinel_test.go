package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/redistest"
)

func openSentinel(t *testing.T, s *redistest.Sentinel) *Redis {
	t.Helper()
	r := open(t, func(o *Options) { o.URL = s.URL() })
	if got := r.ReplicasWanted(); got != 1 {
		t.Fatalf("on Sentinel an event should wait for 1 replica by default, waits for %d", got)
	}
	return r
}

// Writers apply events while the primary is killed with SIGKILL and Sentinel promotes the
// replica, and the old primary comes back as a replica of the new one. Every event Apply acknowledged (the moment a carrier gets its 204) must be in the
// store afterwards: the acknowledgement waited for the replica that is now the primary.
func TestSentinelFailoverLosesNoAcknowledgedEvent(t *testing.T) {
	s := redistest.NewSentinel(t)
	r := openSentinel(t, s)

	const writers = 8
	var (
		mu       sync.Mutex
		acked    = map[string][]string{} // call id -> event ids acknowledged
		nAcked   int
		failures []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			callID := NewCallID()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				id := fmt.Sprintf("w%d-e%d", w, i)
				_, err := r.Apply(ctx, call.Event{ID: id, CallID: callID, State: call.Queued, Direction: call.Outbound,
					Carrier: "tw", CarrierCallID: "CA" + callID, Detail: "event " + id})
				cancel()
				mu.Lock()
				if err == nil {
					acked[callID] = append(acked[callID], id)
					nAcked++
				} else {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		})
	}
	ackedSoFar := func() int { mu.Lock(); defer mu.Unlock(); return nAcked }
	waitAcked := func(n int, within time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for ackedSoFar() < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: %d events acknowledged, want %d; last errors: %v", what, ackedSoFar(), n, lastErrors(&mu, failures))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	waitAcked(300, 30*time.Second, "before the kill")
	s.KillPrimary()
	atKill := ackedSoFar()
	s.WaitPromoted(30 * time.Second)
	// With its only replica promoted, the new primary has none: events are refused (503)
	// until the old primary comes back as its replica.
	s.RestartOldPrimary()
	waitAcked(atKill+300, 30*time.Second, "after the promotion")
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(failures) == 0 {
		t.Fatal("no Apply failed while the primary was dead: the kill did not happen mid-stream")
	}
	for _, err := range failures {
		if !IsUnavailable(err) {
			t.Errorf("during the failover Apply failed with %v, which is not an 'unavailable' error (a carrier would get 500, not 503)", err)
		}
	}
	lost := 0
	for callID, ids := range acked {
		c, err := r.Call(context.Background(), callID)
		if err != nil {
			t.Fatalf("call %s after the failover: %v", callID, err)
		}
		for _, id := range ids {
			if !slices.ContainsFunc(c.History, func(h call.Entry) bool { return h.EventID == id }) {
				lost++
				t.Errorf("event %s of call %s was acknowledged but is not in the store after the failover", id, callID)
			}
		}
	}
	t.Logf("%d events acknowledged (%d before the kill), %d answered with an error during the failover, %d lost",
		nAcked, atKill, len(failures), lost)
}

// While no replica answers, an event is on the primary only: it is refused (a carrier gets
// 503) instead of acknowledged. The carrier's retry, once the replica is back, is acknowledged.
func TestSentinelWithoutReplicaRefusesToAcknowledge(t *testing.T) {
	s := redistest.NewSentinel(t)
	r := openSentinel(t, s)
	ctx := context.Background()
	// The first event loads the script on the primary while the replica is up; a missing script
	// costs a second pipeline, and with it a second wait.
	mustApply(t, r, call.Event{ID: "e0", CallID: NewCallID(), State: call.Queued, Direction: call.Outbound})
	e := call.Event{ID: "e1", CallID: NewCallID(), State: call.Queued, Direction: call.Outbound}

	s.StopReplica()
	_, err := r.Apply(ctx, e)
	if !errors.Is(err, ErrNotReplicated) || !IsUnavailable(err) {
		t.Fatalf("Apply with the replica down: %v, want ErrNotReplicated (unavailable: 503)", err)
	}
	// A parked event (its carrier call id is not known yet) is acknowledged too, so it waits
	// as well.
	parked := call.Event{ID: "p1", Carrier: "tw", CarrierCallID: "CA-unknown", State: call.Ringing}
	if _, err := r.Apply(ctx, parked); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("parking with the replica down: %v, want ErrNotReplicated", err)
	}

	s.StartReplica()
	s.WaitReplicaInSync()
	a, err := r.Apply(ctx, e) // the carrier's retry: a duplicate on the primary
	if err != nil {
		t.Fatalf("retry with the replica back: %v", err)
	}
	if a.Outcome != call.Duplicate {
		t.Errorf("retry outcome %v, want duplicate: the refused attempt did reach the primary", a.Outcome)
	}
	if a, err := r.Apply(ctx, parked); err != nil || !a.Parked {
		t.Errorf("parking retry with the replica back: %+v, %v", a, err)
	}
}

func TestMinReplicasByDeployment(t *testing.T) {
	for _, tc := range []struct {
		name              string
		min               int
		sentinel, cluster bool
		want              int
		err               string
	}{
		{"single node waits for none", 0, false, false, 0, ""},
		{"sentinel waits for one", 0, true, false, 1, ""},
		{"sentinel told not to wait", NoReplicas, true, false, 0, ""},
		{"sentinel with two", 2, true, false, 2, ""},
		{"single node told to wait", 1, false, false, 1, ""},
		{"cluster waits for none", 0, false, true, 0, ""},
		{"cluster cannot wait", 1, false, true, 0, "not supported on Redis Cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := replicaPolicyFor(Options{MinReplicas: tc.min}, tc.sentinel, tc.cluster)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || p.want != tc.want {
				t.Fatalf("want %d replicas, got %d (%v)", tc.want, p.want, err)
			}
		})
	}
}

func lastErrors(mu *sync.Mutex, errs []error) []error {
	if len(errs) > 3 {
		return errs[len(errs)-3:]
	}
	return errs
}
