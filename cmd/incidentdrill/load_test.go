package main

import "testing"

// The load's numbers follow the simulator's rule: 97 in 100 answer, 2 are busy, 1 invalid.
func TestNumbers(t *testing.T) {
	count := map[destination]int{}
	for i := range 1000 {
		n, d := number(i)
		count[d]++
		last := n[len(n)-1]
		if ok := map[destination]string{answers: "0", busy: "1", invalid: "3"}[d]; string(last) != ok {
			t.Fatalf("number %d: %s is %s", i, n, d)
		}
	}
	if count[answers] != 970 || count[busy] != 20 || count[invalid] != 10 {
		t.Errorf("destinations %v", count)
	}
}
