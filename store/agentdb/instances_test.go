package agentdb

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/redistest"
)

func anchoredOn(t *testing.T, r *Store, instance string) []string {
	t.Helper()
	ids, err := r.Anchored(context.Background(), instance)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// The index of anchored calls follows every place an offer's holder is set or the offer ends.
func TestAnchoredIndexFollowsOffers(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	// Nobody available: the call stays with the instance routing it.
	if _, err := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "a", HolderURL: "http://a"}, time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	// An agent on b rings: the media goes to b.
	login(t, r, "ann", "b", Available, time.Now().Add(-time.Minute))
	o, err := r.Route(ctx, Offer{Call: "CL2", Direction: call.Inbound, Holder: "a", HolderURL: "http://a"}, time.Second, time.Minute)
	if err != nil || o.Holder != "b" {
		t.Fatalf("route: %+v %v", o, err)
	}
	// A webhook retried changes nothing.
	if _, err := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "c", HolderURL: "http://c"}, time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	// An outbound call goes to its agent's instance.
	login(t, r, "bob", "c", Available, time.Now())
	if _, _, err := r.ClaimForDial(ctx, "bob", "", Offer{Call: "CL3", To: "+15550100"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if a, b, c := anchoredOn(t, r, "a"), anchoredOn(t, r, "b"), anchoredOn(t, r, "c"); !slices.Equal(a, []string{"CL1"}) ||
		!slices.Equal(b, []string{"CL2"}) || !slices.Equal(c, []string{"CL3"}) {
		t.Fatalf("anchored: a %v b %v c %v", a, b, c)
	}
	for _, id := range []string{"CL1", "CL2", "CL3"} {
		if _, err := r.EndOffer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, inst := range []string{"a", "b", "c"} {
		if ids := anchoredOn(t, r, inst); len(ids) != 0 {
			t.Errorf("%s still anchors %v after the calls ended", inst, ids)
		}
	}
}

// A survivor claims a dead instance's live calls: queued stays queued, ringing is queued
// again with the agent's reservation dropped, answered stays answered; ended calls are only
// dropped from the index; a live instance's calls and the claimer's own are never taken.
func TestClaimOrphansMovesADeadInstancesCalls(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for _, inst := range []string{"a", "b", "live"} {
		if lapsed, err := r.InstanceHeartbeat(ctx, inst, "http://"+inst, time.Minute); err != nil || !lapsed {
			t.Fatal("first heartbeat", lapsed, err)
		}
		if lapsed, err := r.InstanceHeartbeat(ctx, inst, "http://"+inst, time.Minute); err != nil || lapsed {
			t.Fatal("second heartbeat", lapsed, err)
		}
	}
	route := func(id, holder string) Offer {
		o, err := r.Route(ctx, Offer{Call: id, Direction: call.Inbound, From: "+1555", Holder: holder, HolderURL: "http://" + holder}, 10*time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	route("CLq", "a") // queued: nobody available yet
	login(t, r, "ann", "a", Available, time.Now().Add(-time.Minute))
	if o := route("CLr", "a"); o.State != OfferRinging || o.Agent != "ann" || o.Holder != "a" {
		t.Fatalf("ringing: %+v", o)
	}
	login(t, r, "bob", "a", Available, time.Now().Add(-time.Minute))
	route("CLans", "a")
	if err := r.AnswerOffer(ctx, "CLans", "bob", "s-bob"); err != nil {
		t.Fatal(err)
	}
	route("CLend", "a")
	if _, err := r.EndOffer(ctx, "CLend"); err != nil {
		t.Fatal(err)
	}
	route("CLlive", "live")
	route("CLb", "b")

	if n, err := r.OtherInstancesAlive(ctx, "a"); err != nil || n != 2 {
		t.Fatalf("others alive: %d %v", n, err)
	}
	// Nobody is dead: nothing moves.
	if got, err := r.ClaimOrphans(ctx, "b", "http://b", 100); err != nil || len(got) != 0 {
		t.Fatalf("claim with everyone alive: %+v %v", got, err)
	}
	if alive, err := r.InstanceAlive(ctx, "a"); err != nil || !alive {
		t.Fatalf("a alive: %v %v", alive, err)
	}
	if err := r.LeaveInstances(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if alive, err := r.InstanceAlive(ctx, "a"); err != nil || alive {
		t.Fatalf("a alive after leaving: %v %v", alive, err)
	}
	if n, err := r.OtherInstancesAlive(ctx, "b"); err != nil || n != 1 {
		t.Fatalf("others alive after a left: %d %v", n, err)
	}
	if urls, err := r.OtherInstanceURLs(ctx, "b"); err != nil || len(urls) != 1 || urls[0] != "http://live" {
		t.Fatalf("other live instances' URLs after a left: %q %v", urls, err)
	}
	if urls, err := r.OtherInstanceURLs(ctx, "a"); err != nil || len(urls) != 2 || slices.Contains(urls, "http://a") {
		t.Fatalf("the URLs of those that outlive a: %q %v", urls, err)
	}
	// The leaving instance never claims its own calls.
	if got, err := r.ClaimOrphans(ctx, "a", "http://a", 100); err != nil || len(got) != 0 {
		t.Fatalf("a claimed its own calls: %+v %v", got, err)
	}
	got, err := r.ClaimOrphans(ctx, "b", "http://b", 100)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]ClaimedOffer{}
	for _, c := range got {
		byID[c.Offer.Call] = c
		if c.Offer.Holder != "b" || c.Offer.HolderURL != "http://b" {
			t.Errorf("%s: holder %s at %s", c.Offer.Call, c.Offer.Holder, c.Offer.HolderURL)
		}
	}
	if len(got) != 3 {
		t.Fatalf("claimed %d calls, want CLq, CLr, CLans: %+v", len(got), got)
	}
	if c := byID["CLq"]; c.Prev != OfferQueued || c.Offer.State != OfferQueued {
		t.Errorf("queued: %+v", c)
	}
	if c := byID["CLr"]; c.Prev != OfferRinging || c.PrevAgent != "ann" || c.Offer.State != OfferQueued || c.Offer.Agent != "" {
		t.Errorf("ringing: %+v", c)
	}
	if c := byID["CLans"]; c.Prev != OfferAnswered || c.Offer.State != OfferAnswered || c.Offer.Agent != "bob" {
		t.Errorf("answered: %+v", c)
	}
	// Ann's reservation is gone, and she may be offered the call again (she did not decline).
	if p, _ := r.Presence(ctx, "ann"); p.Ringing != "" {
		t.Errorf("ann still reserved for %s", p.Ringing)
	}
	if o, err := r.Reserve(ctx, "CLr", 10*time.Second); err != nil || o.State != OfferRinging || o.Agent != "ann" {
		t.Errorf("re-offer: %+v %v", o, err)
	}
	if a := anchoredOn(t, r, "a"); len(a) != 0 {
		t.Errorf("a still anchors %v", a)
	}
	// An instance taken for dead that comes back learns it from its next heartbeat.
	if lapsed, err := r.InstanceHeartbeat(ctx, "a", "http://a", time.Minute); err != nil || !lapsed {
		t.Errorf("a back after it was taken for dead: lapsed %v %v", lapsed, err)
	}
	if b := anchoredOn(t, r, "b"); !slices.Equal(b, []string{"CLans", "CLb", "CLq", "CLr"}) {
		t.Errorf("b anchors %v", b)
	}
	if l := anchoredOn(t, r, "live"); !slices.Equal(l, []string{"CLlive"}) {
		t.Errorf("live anchors %v", l)
	}
	// The dead instance, its calls gone, is forgotten; a claim finds nothing more.
	if n, _ := r.rdb.ZCard(ctx, r.keys.instances()).Result(); n != 3 {
		t.Errorf("%d instances listed, want a (back), b and live", n)
	}
	if again, err := r.ClaimOrphans(ctx, "live", "http://live", 100); err != nil || len(again) != 0 {
		t.Errorf("second claim: %+v %v", again, err)
	}
}

// Two survivors claiming a dead instance's calls at once, in small batches, share them out:
// every call is claimed exactly once.
func TestClaimOrphansRaceIsDisjointAndComplete(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	const calls = 300
	want := make([]string, 0, calls)
	for i := range calls {
		id := fmt.Sprintf("CL%03d", i)
		want = append(want, id)
		if _, err := r.Route(ctx, Offer{Call: id, Direction: call.Inbound, Holder: "dead", HolderURL: "http://dead"}, time.Second, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.InstanceHeartbeat(ctx, "dead", "http://dead", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, me := range []string{"x", "y", "z"} {
		wg.Go(func() {
			<-start
			for {
				batch, err := r.ClaimOrphans(ctx, me, "http://"+me, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(batch) == 0 {
					return
				}
				mu.Lock()
				for _, c := range batch {
					got[c.Offer.Call] = append(got[c.Offer.Call], me)
					if c.Offer.Holder != me {
						t.Errorf("%s claimed by %s but held by %s", c.Offer.Call, me, c.Offer.Holder)
					}
				}
				mu.Unlock()
			}
		})
	}
	redistest.Eventually(t, 5*time.Second, "the dead instance's deadline passes", func() bool {
		alive, err := r.InstanceAlive(ctx, "dead")
		return err == nil && !alive
	})
	close(start)
	wg.Wait()
	per := map[string]int{}
	for _, id := range want {
		switch owners := got[id]; len(owners) {
		case 1:
			per[owners[0]]++
		default:
			t.Errorf("%s claimed by %v", id, owners)
		}
	}
	if len(got) != calls {
		t.Errorf("%d calls claimed, want %d", len(got), calls)
	}
	total := 0
	for _, inst := range []string{"x", "y", "z"} {
		ids := anchoredOn(t, r, inst)
		total += len(ids)
		if len(ids) != per[inst] {
			t.Errorf("%s anchors %d calls but claimed %d", inst, len(ids), per[inst])
		}
	}
	t.Logf("claims per instance: %v", per)
	if total != calls {
		t.Errorf("the index holds %d calls, want %d", total, calls)
	}
}

// The liveness and claim scripts touch keys they name themselves (per-instance indexes,
// offers): on Redis Cluster they must all share the {agents} slot.
func TestClaimOrphansOnCluster(t *testing.T) {
	r := openCluster(t)
	ctx := context.Background()
	if _, err := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "a", HolderURL: "http://a"}, time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := r.InstanceHeartbeat(ctx, "b", "http://b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.LeaveInstances(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ClaimOrphans(ctx, "b", "http://b", 10)
	if err != nil || len(got) != 1 || got[0].Offer.Holder != "b" {
		t.Fatalf("claim on the cluster: %+v %v", got, err)
	}
	if _, err := r.EndOffer(ctx, "CL1"); err != nil {
		t.Fatal(err)
	}
	if ids := anchoredOn(t, r, "b"); len(ids) != 0 {
		t.Fatalf("b anchors %v after the end", ids)
	}
}
