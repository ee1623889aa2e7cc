package procs

import (
	"log/slog"
	"testing"
)

// bridges plays the engine's hook: n bridges started (n > 0) or ended (n < 0), one at a time.
type bridges struct {
	c    *Controller
	live int
}

func (b *bridges) change(n int) {
	step := 1
	if n < 0 {
		step, n = -1, -n
	}
	for range n {
		b.live += step
		b.c.Bridges(b.live)
	}
}

func TestProcsRaisedWhileManyBridgesAndRestoredBelowHalf(t *testing.T) {
	var sets []int
	restores := 0
	c := &Controller{set: func(n int) int { sets = append(sets, n); return 2 }, restore: func() { restores++ }, busyProcs: 1000,
		log: slog.New(slog.DiscardHandler)}
	b := &bridges{c: c}
	b.change(busyBridges - 1)
	if len(sets) != 0 {
		t.Fatalf("raised at %d bridges", busyBridges-1)
	}
	b.change(1)
	b.change(20) // more bridges: no second change
	if len(sets) != 1 || sets[0] != 1000 {
		t.Fatalf("GOMAXPROCS set to %v at %d bridges, want [1000]", sets, busyBridges)
	}
	for b.live > busyBridges/2+1 {
		b.change(-1)
	}
	if restores != 0 {
		t.Fatal("restored above half the threshold")
	}
	b.change(-1)
	if restores != 1 {
		t.Fatalf("restores = %d at %d bridges, want 1", restores, b.live)
	}
	b.change(-b.live)
	if restores != 1 || len(sets) != 1 {
		t.Fatalf("changes after restoring: sets %v, restores %d", sets, restores)
	}
}

func TestProcsLeftAloneWhenTheOperatorChose(t *testing.T) {
	c := &Controller{set: func(int) int { t.Fatal("GOMAXPROCS changed"); return 0 }, restore: func() { t.Fatal("restored") },
		fixed: true, busyProcs: 1000, log: slog.New(slog.DiscardHandler)}
	b := &bridges{c: c}
	b.change(2 * busyBridges)
	b.change(-2 * busyBridges)
}
