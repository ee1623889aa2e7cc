package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

// BenchmarkApply stores the events of call lifecycles from parallel goroutines, as the
// callback path does; ns/op is per event, and redis-µs/op the redis-server CPU time per event
// (from INFO cpu: run it alone). Run with -cpu to vary the parallelism.
func BenchmarkApply(b *testing.B) {
	r := open(b)
	ctx := context.Background()
	before := redisCPU(b, r)
	defer func() { b.ReportMetric(float64((redisCPU(b, r)-before).Microseconds())/float64(b.N), "redis-µs/op") }()
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

// redisCPU is the CPU time the redis-server behind r has used, user and system.
func redisCPU(b *testing.B, r *Redis) time.Duration {
	info, err := r.rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
