package carrierdb

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/statsdb"
	"github.com/switchboard/switchboard/store/storetest"
)

// Every goroutine a test starts (subscriptions, batchers, servers) must be gone when the
// package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

func open(t testing.TB) *Store { return openNS(t, redistest.Namespace(t)) }

// openNS opens the store of one instance on the test Redis under namespace ns.
func openNS(t testing.TB, ns string) *Store {
	t.Helper()
	return openURL(t, redistest.URL(t), ns)
}

func openURL(t testing.TB, url, ns string) *Store {
	t.Helper()
	return New(storetest.Open(t, url, ns))
}

// TestKeysAreUnchanged pins the key names: they are a deployment's data, kept from when these
// records lived in package store, and each script's keys share one hash tag.
func TestKeysAreUnchanged(t *testing.T) {
	k := keys{ns: "sb"}
	for got, want := range map[string]string{
		k.breaker("tw", "open"): "sb:{cb:tw}:open",
		k.breakerChannel():      "sb:breakers",
		k.carriers():            "sb:{config}:carriers",
		k.carrierEvents():       "sb:carrier-events",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

func TestCarrierEvents(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := store.NewCallID()
	ev := []Event{{Kind: "failover", Carrier: "primary", Next: "secondary", CallID: id, Detail: "http 503"}}
	if err := r.AddCarrierEvent(ctx, ev[0]); err != nil {
		t.Fatal(err)
	}
	got, err := r.CarrierEvents(ctx, 5)
	if err != nil || len(got) != 1 || got[0].Next != "secondary" || got[0].At.IsZero() {
		t.Fatalf("carrier events: %+v %v", got, err)
	}
}

// TestCarrierEventsAreCharted: a failover and a breaker change are counted for the charts in
// the round trip that records them.
func TestCarrierEventsAreCharted(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for _, e := range []Event{
		{Kind: "failover", Carrier: "primary", Next: "secondary", CallID: store.NewCallID()},
		{Kind: "failover", Carrier: "primary", Next: "secondary", CallID: store.NewCallID()},
		{Kind: "breaker-open", Carrier: "primary"},
		{Kind: "breaker-forced", Carrier: "secondary", Next: "open"},
	} {
		if err := r.AddCarrierEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	w, err := statsdb.New(r.Redis).Window(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, s := range w.Failovers {
		for _, v := range s.Values {
			total += v
		}
	}
	if len(w.Failovers) != 1 || w.Failovers[0].Carrier != "primary" || total != 2 {
		t.Fatalf("failovers: %+v", w.Failovers)
	}
	if len(w.Breakers) != 2 || w.Breakers[0].Changes[0].State != "open" || w.Breakers[1].Changes[0].State != "forced-open" {
		t.Fatalf("breakers: %+v", w.Breakers)
	}
}

// TestOnRedisCluster runs this package's scripts and transactions on a real three-node Redis
// Cluster: every key one of them touches must hash to one slot, or Redis refuses it with
// CROSSSLOT.
func TestOnRedisCluster(t *testing.T) {
	cluster := redistest.NewCluster(t)
	r := openURL(t, cluster.Addrs(), "")
	ctx := context.Background()

	if err := r.PutCarrier(ctx, "primary", []byte(`{}`), store.Audit{Actor: "t", Action: "carrier.create", Target: "primary"}); err != nil {
		t.Fatal(err)
	}
	if all, err := r.Carriers(ctx); err != nil || len(all) != 1 {
		t.Fatalf("carriers on the cluster: %v %v", all, err)
	}
	if log, err := r.AuditLog(ctx, 10); err != nil || len(log) != 1 {
		t.Fatalf("audit on the cluster: %v %v", log, err)
	}
	if err := r.DeleteCarrier(ctx, "primary", store.Audit{Actor: "t", Action: "carrier.delete", Target: "primary"}); err != nil {
		t.Fatal(err)
	}
	clusterBreakerChecks(t, r)

	// The heard scripts touch one hash slot each.
	if err := r.MarkHeard(ctx, "tw"); err != nil {
		t.Fatal(err)
	}
	if silent, err := r.CarrierSilent(ctx, "tw", time.Minute); err != nil || silent {
		t.Fatalf("silent = %v, %v just after being heard", silent, err)
	}
	if silent, err := r.CarrierSilent(ctx, "tx", time.Minute); err != nil || !silent {
		t.Fatalf("silent = %v, %v for a carrier never heard", silent, err)
	}
}

// clusterBreakerChecks runs the shared-breaker scripts on the cluster, for carriers whose
// keys land on different nodes.
func clusterBreakerChecks(t *testing.T, r *Store) {
	t.Helper()
	ctx := context.Background()
	p := BreakerPolicy{FailureThreshold: 2, FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second,
		BucketPeriod: time.Second, OpenTimeout: time.Minute}
	for _, carrier := range []string{"primary", "secondary", "third"} {
		for range 3 {
			if _, err := r.RecordBreakerOutcome(ctx, carrier, true, p); err != nil {
				t.Fatalf("%s: record outcome: %v", carrier, err)
			}
		}
		if _, err := r.OpenBreaker(ctx, carrier, time.Minute, false); err != nil {
			t.Fatalf("%s: open: %v", carrier, err)
		}
		if _, err := r.ClaimProbe(ctx, carrier, "me", time.Second); err != nil {
			t.Fatalf("%s: probe: %v", carrier, err)
		}
		if err := r.ForceBreaker(ctx, carrier, "open", store.Audit{Actor: "t", Action: "breaker.force", Target: carrier}); err != nil {
			t.Fatalf("%s: force: %v", carrier, err)
		}
		if _, err := r.BreakerWindowOf(ctx, carrier, p); err != nil {
			t.Fatalf("%s: window: %v", carrier, err)
		}
	}
	states, err := r.BreakerStates(ctx, []string{"primary", "secondary", "third"})
	if err != nil || len(states) != 3 || states["third"].OpenFor <= 0 || states["primary"].Force != "open" {
		t.Fatalf("breaker states on the cluster: %+v %v", states, err)
	}
}
