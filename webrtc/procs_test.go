package webrtc

import "testing"

func TestProcsRaisedWhileManyBridgesAndRestoredBelowHalf(t *testing.T) {
	var sets []int
	restores := 0
	c := &procController{set: func(n int) int { sets = append(sets, n); return 2 }, restore: func() { restores++ }, busyProcs: 1000}
	for range busyBridges - 1 {
		c.bridgeStarted()
	}
	if len(sets) != 0 {
		t.Fatalf("raised at %d bridges", busyBridges-1)
	}
	c.bridgeStarted()
	for range 20 {
		c.bridgeStarted() // more bridges: no second change
	}
	if len(sets) != 1 || sets[0] != 1000 {
		t.Fatalf("GOMAXPROCS set to %v at %d bridges, want [1000]", sets, busyBridges)
	}
	for c.bridges > busyBridges/2+1 {
		c.bridgeEnded()
	}
	if restores != 0 {
		t.Fatal("restored above half the threshold")
	}
	c.bridgeEnded()
	if restores != 1 {
		t.Fatalf("restores = %d at %d bridges, want 1", restores, c.bridges)
	}
	for c.bridges > 0 {
		c.bridgeEnded()
	}
	if restores != 1 || len(sets) != 1 {
		t.Fatalf("changes after restoring: sets %v, restores %d", sets, restores)
	}
}

func TestProcsLeftAloneWhenTheOperatorChose(t *testing.T) {
	c := &procController{set: func(int) int { t.Fatal("GOMAXPROCS changed"); return 0 }, restore: func() { t.Fatal("restored") },
		fixed: true, busyProcs: 1000}
	for range 2 * busyBridges {
		c.bridgeStarted()
	}
	for range 2 * busyBridges {
		c.bridgeEnded()
	}
}
