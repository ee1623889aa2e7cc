package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/call"
)

// BenchmarkApply stores the events of call lifecycles from parallel goroutines, as the
// callback path does; ns/op is per event. Run with -cpu to vary the parallelism.
func BenchmarkApply(b *testing.B) {
	r := open(b)
	ctx := context.Background()
	states := []call.State{call.Initiated, call.Ringing, call.InProgress, call.Completed}
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := fmt.Sprintf("CL%024x", i/4)
			s := states[i%4]
			if _, err := r.Apply(ctx, call.Event{ID: fmt.Sprint(i), CallID: id, State: s, Carrier: "tw", CarrierCallID: id}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
