package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestJobsEnqueueOnceClaimCompleteRetry(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	j := Job{ID: JobID(JobAnswer, "CL1"), Kind: JobAnswer, CallID: "CL1", Carrier: "tx", CarrierCallID: "v3:abc"}
	for i, want := range []bool{true, false, false} {
		created, err := r.EnqueueJob(ctx, j)
		if err != nil || created != want {
			t.Fatalf("enqueue #%d = %v, %v; want %v", i+1, created, err, want)
		}
	}
	got, err := r.ClaimJobs(ctx, "a", time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].Job != j || got[0].Attempt != 1 {
		t.Fatalf("claim = %+v, %v; want the one job, attempt 1", got, err)
	}
	if again, _ := r.ClaimJobs(ctx, "b", time.Minute, 10); len(again) != 0 {
		t.Fatalf("a claimed job was claimed again under its lease: %+v", again)
	}
	if err := r.RetryJob(ctx, got[0], 0, "http 503"); err != nil {
		t.Fatal(err)
	}
	if err := r.CompleteJob(ctx, got[0]); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("completing with a claim given back = %v, want ErrLeaseLost", err)
	}
	second, err := r.ClaimJobs(ctx, "b", time.Minute, 10)
	if err != nil || len(second) != 1 || second[0].Attempt != 2 || second[0].LastError != "http 503" {
		t.Fatalf("second claim = %+v, %v; want attempt 2 with the last error", second, err)
	}
	if err := r.CompleteJob(ctx, second[0]); err != nil {
		t.Fatal(err)
	}
	st, err := r.JobOf(ctx, j.ID)
	if err != nil || st.State != "done" || st.Attempts != 2 {
		t.Fatalf("job = %+v, %v; want done after 2 attempts", st, err)
	}
	if n, _ := r.JobBacklog(ctx); n != 0 {
		t.Fatalf("backlog = %d after the job is done", n)
	}
	if created, _ := r.EnqueueJob(ctx, j); created {
		t.Fatal("a replayed job was enqueued again after it was done")
	}
}

// TestJobLeaseTakenOver: a runner that claims a job and dies (never completes it) loses it
// at the end of its lease to another runner, whose claim then owns the outcome.
func TestJobLeaseTakenOver(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	j := Job{ID: JobID(JobHangup, "CL2"), Kind: JobHangup, CallID: "CL2", Carrier: "tw"}
	if _, err := r.EnqueueJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	dead, err := r.ClaimJobs(ctx, "dead", 200*time.Millisecond, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("claim = %+v, %v", dead, err)
	}
	var taken []Claimed
	deadline := time.Now().Add(5 * time.Second)
	for len(taken) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dead runner's job was never taken over")
		}
		if taken, err = r.ClaimJobs(ctx, "alive", time.Minute, 10); err != nil {
			t.Fatal(err)
		}
	}
	if taken[0].Attempt != 2 {
		t.Fatalf("take-over attempt = %d, want 2", taken[0].Attempt)
	}
	if err := r.CompleteJob(ctx, dead[0]); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("the dead runner's late completion = %v, want ErrLeaseLost", err)
	}
	if err := r.FailJob(ctx, taken[0], "gave up"); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.JobOf(ctx, j.ID); st.State != "failed" || st.LastError != "gave up" {
		t.Fatalf("job = %+v; want failed with its reason", st)
	}
}

// TestHangupJobRenews: a hang-up asked for again after the previous one finished is a new
// job (the call did not end); an answer never is.
func TestHangupJobRenews(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for _, c := range []struct {
		kind  string
		again bool
	}{{JobHangup, true}, {JobAnswer, false}, {JobReject, false}} {
		j := Job{ID: JobID(c.kind, "CL3"), Kind: c.kind, CallID: "CL3", Carrier: "tx"}
		if created, err := r.EnqueueJob(ctx, j); err != nil || !created {
			t.Fatalf("%s: enqueue = %v, %v", c.kind, created, err)
		}
		if created, _ := r.EnqueueJob(ctx, j); created {
			t.Fatalf("%s: enqueued twice while pending", c.kind)
		}
		got, err := r.ClaimJobs(ctx, "a", time.Minute, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: claim = %+v, %v", c.kind, got, err)
		}
		if err := r.FailJob(ctx, got[0], "carrier said no"); err != nil {
			t.Fatal(err)
		}
		if created, _ := r.EnqueueJob(ctx, j); created != c.again {
			t.Fatalf("%s: enqueued after it finished = %v, want %v", c.kind, created, c.again)
		}
		if c.again {
			st, _ := r.JobOf(ctx, j.ID)
			if st.State != "pending" || st.Attempts != 0 || st.LastError != "" {
				t.Fatalf("renewed job = %+v; want pending afresh", st)
			}
			got, _ := r.ClaimJobs(ctx, "a", time.Minute, 10)
			r.CompleteJob(ctx, got[0])
		}
	}
}

// TestJobsOnRedisCluster: the job scripts touch one hash slot each, as Redis
// Cluster requires (the claim script reads job keys it is not handed, all under {jobs}).
func TestJobsOnRedisCluster(t *testing.T) {
	r := openCluster(t)
	ctx := context.Background()
	for i := range 5 {
		id := fmt.Sprintf("CL%d", i)
		if _, err := r.EnqueueJob(ctx, Job{ID: JobID(JobHangup, id), Kind: JobHangup, CallID: id, Carrier: "tw"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.ClaimJobs(ctx, "a", time.Minute, 10)
	if err != nil || len(got) != 5 {
		t.Fatalf("claim on Cluster = %d jobs, %v", len(got), err)
	}
	if err := r.RetryJob(ctx, got[0], time.Hour, "later"); err != nil {
		t.Fatal(err)
	}
	for _, c := range got[1:] {
		if err := r.CompleteJob(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}
