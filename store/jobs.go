package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Carrier actions owed after an acknowledgement (answer an inbound Telnyx call, hang a call
// up, let go of one nobody can take) are jobs in Redis, so that any instance can do them and
// an instance that dies after acknowledging loses none. Every key shares the hash tag
// {jobs}, so each script touches one slot (valid on Redis Cluster):
//
//	<ns>:{jobs}:due      sorted set of job ids: a waiting job is scored by when it is due, a
//	                     claimed one by when its lease runs out. Claiming takes what is due
//	                     either way, so a claim whose holder died is taken over at the lease.
//	<ns>:{jobs}:j:<id>   the job: its JSON, state, attempts, current claim and last error.
//	                     It outlives the job by JobKeep, which is what makes a duplicate or
//	                     replayed webhook find it and enqueue nothing.
//
// Times are Redis's clock (TIME), so instances' clocks need not agree.

func (k keys) jobsDue() string      { return k.ns + ":{jobs}:due" }
func (k keys) jobPrefix() string    { return k.ns + ":{jobs}:j:" }
func (k keys) job(id string) string { return k.jobPrefix() + id }

// Job kinds.
const (
	JobAnswer = "answer" // answer an inbound Telnyx call after call.initiated
	JobHangup = "hangup" // end a call at its carrier (the API, an agent, the softphone)
	JobReject = "reject" // let go of an inbound Telnyx call nobody can take
	// JobRestream starts a live Telnyx call's media stream again (streaming_start, to the
	// job's StreamURL) after its stream failed to reach an instance that no longer holds it.
	JobRestream = "restream"
	// JobHangupOrphan ends one carrier call that an attempt we gave up on created: the job
	// names that carrier and carrier call id, never the record's (which is the live call).
	JobHangupOrphan = "hangup-orphan"
)

// JobKeep is how long a job's record stays after it was enqueued: its id deduplicates for
// that long. Carriers retry a webhook for minutes, not days.
const JobKeep = 24 * time.Hour

// Job is one carrier action. ID is its dedupe key: the call and the action (JobID), so a
// second request for the same action on the same call is the same job.
type Job struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	CallID        string `json:"call"`
	Carrier       string `json:"carrier"`
	CarrierCallID string `json:"carrier_call_id,omitempty"`
	From          string `json:"from,omitempty"`
	To            string `json:"to,omitempty"`
	// StreamURL is where an answered call's media goes, as known when the job was stored;
	// the runner may point it elsewhere (the instance that holds the call's agent).
	StreamURL string `json:"stream_url,omitempty"`
	// By says who asked: "webhook", "api:admin", "api:agent:<id>", "agent", "queue".
	By string `json:"by,omitempty"`
}

// JobID is the dedupe key of kind on call: one answer, one hang-up, one reject per call.
func JobID(kind, callID string) string { return kind + ":" + callID }

// OrphanJobID is the dedupe key of the hang-up of one orphan: its carrier and carrier call
// id, so every callback of the orphan and every lookup that finds it is the same job.
func OrphanJobID(carrier, carrierCallID string) string {
	return JobHangupOrphan + ":" + carrier + ":" + carrierCallID
}

// renews says whether a job of kind may be stored again once the previous one finished: a
// hang-up may be asked for again (the call did not end), an answer must never be repeated
// for a replayed webhook.
func renews(kind string) bool { return kind == JobHangup }

// Claimed is a job a runner holds until its lease ends.
type Claimed struct {
	Job
	Attempt   int    // 1 for the first claim; a claim lost with its holder counts too
	Claim     string // the lease token; completing with a stale one is refused
	LastError string // why the previous attempt failed, if it did
}

// JobStatus is what is known of a job.
type JobStatus struct {
	Job
	State     string // pending, claimed, done, failed
	Attempts  int
	LastError string
}

// ErrLeaseLost is returned when work claimed under a lease (a carrier action job, a
// reconcile check) is settled after its lease ran out and another instance took it over:
// the other instance now owns the outcome.
var ErrLeaseLost = errors.New("store: lease lost to another instance")

var (
	// KEYS: 1 due, 2 job; ARGV: 1 id, 2 json, 3 keep ms, 4 'renew' or ''. Returns 1 if
	// enqueued, 0 if the job exists already: pending or running, or (unless renewed) done or
	// failed.
	enqueueJobScript = redis.NewScript(`
local state = redis.call('HGET', KEYS[2], 'state')
if state and not (ARGV[4] == 'renew' and (state == 'done' or state == 'failed')) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], 'j', ARGV[2], 'state', 'pending', 'attempts', 0, 'created', now, 'err', '', 'claim', '')
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1`)

	// KEYS: 1 due; ARGV: 1 job key prefix, 2 lease ms, 3 max jobs, 4 holder.
	// Every job key shares KEYS[1]'s hash tag, so the slot is the same.
	claimJobsScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local k = ARGV[1] .. id
  local j = redis.call('HMGET', k, 'j', 'state', 'err')
  if not j[1] or j[2] == 'done' or j[2] == 'failed' then
    redis.call('ZREM', KEYS[1], id)
  else
    local n = redis.call('HINCRBY', k, 'attempts', 1)
    local claim = ARGV[4] .. '/' .. n
    redis.call('HSET', k, 'state', 'claimed', 'claim', claim)
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    out[#out + 1] = {j[1], n, claim, j[3] or ''}
  end
end
return out`)

	// finish: the job is done or failed for good, if claim still holds it.
	// KEYS: 1 due, 2 job; ARGV: 1 id, 2 claim, 3 state, 4 error
	finishJobScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'claim') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', ARGV[3], 'err', ARGV[4], 'claim', '')
return 1`)

	// retry: the job waits ARGV[3] ms and is claimed again, if claim still holds it.
	// KEYS: 1 due, 2 job; ARGV: 1 id, 2 claim, 3 delay ms, 4 error
	retryJobScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'claim') ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'pending', 'err', ARGV[4], 'claim', '')
return 1`)
)

// EnqueueJob stores j, due now, unless a job with its id is waiting or running, or has
// finished and is not a hang-up (a hang-up may be asked for again): it reports whether it
// stored a new one. When it returns without error the job is durable.
func (r *Redis) EnqueueJob(ctx context.Context, j Job) (bool, error) {
	if j.ID == "" || j.Kind == "" || j.CallID == "" {
		return false, fmt.Errorf("store: job %q without id, kind or call", j.ID)
	}
	raw, err := json.Marshal(j)
	if err != nil {
		return false, err
	}
	mode := ""
	if renews(j.Kind) {
		mode = "renew"
	}
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	n, err := enqueueJobScript.Run(ctx, r.rdb, []string{r.keys.jobsDue(), r.keys.job(j.ID)},
		j.ID, raw, JobKeep.Milliseconds(), mode).Int()
	if err != nil {
		return false, fmt.Errorf("store: enqueue job %s: %w", j.ID, err)
	}
	return n == 1, nil
}

// ClaimJobs takes up to max jobs that are due (or whose lease ran out) for holder, for lease.
// A holder must finish each job (CompleteJob, FailJob or RetryJob) within its lease, or
// another runner may take it over.
func (r *Redis) ClaimJobs(ctx context.Context, holder string, lease time.Duration, max int) ([]Claimed, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	res, err := claimJobsScript.Run(ctx, r.rdb, []string{r.keys.jobsDue()}, r.keys.jobPrefix(),
		lease.Milliseconds(), max, holder).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: claim jobs: %w", err)
	}
	out := make([]Claimed, 0, len(res))
	for _, row := range res {
		f, ok := row.([]any)
		if !ok || len(f) != 4 {
			continue
		}
		raw, _ := f[0].(string)
		var c Claimed
		if err := json.Unmarshal([]byte(raw), &c.Job); err != nil {
			return out, fmt.Errorf("store: claimed job is unreadable: %w", err)
		}
		n, _ := f[1].(int64)
		c.Attempt = int(n)
		c.Claim, _ = f[2].(string)
		c.LastError, _ = f[3].(string)
		out = append(out, c)
	}
	return out, nil
}

// CompleteJob marks a claimed job done.
func (r *Redis) CompleteJob(ctx context.Context, c Claimed) error {
	return r.finishJob(ctx, c, "done", "")
}

// FailJob gives a claimed job up for good, recording why.
func (r *Redis) FailJob(ctx context.Context, c Claimed, reason string) error {
	return r.finishJob(ctx, c, "failed", reason)
}

func (r *Redis) finishJob(ctx context.Context, c Claimed, state, reason string) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	n, err := finishJobScript.Run(ctx, r.rdb, []string{r.keys.jobsDue(), r.keys.job(c.ID)},
		c.ID, c.Claim, state, reason).Int()
	switch {
	case err != nil:
		return fmt.Errorf("store: finish job %s: %w", c.ID, err)
	case n == 0:
		return ErrLeaseLost
	}
	return nil
}

// RetryJob puts a claimed job back, due after delay, recording why this attempt failed.
func (r *Redis) RetryJob(ctx context.Context, c Claimed, delay time.Duration, reason string) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	n, err := retryJobScript.Run(ctx, r.rdb, []string{r.keys.jobsDue(), r.keys.job(c.ID)},
		c.ID, c.Claim, max(delay, 0).Milliseconds(), reason).Int()
	switch {
	case err != nil:
		return fmt.Errorf("store: retry job %s: %w", c.ID, err)
	case n == 0:
		return ErrLeaseLost
	}
	return nil
}

// JobBacklog counts the jobs waiting or running.
func (r *Redis) JobBacklog(ctx context.Context) (int64, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	n, err := r.rdb.ZCard(ctx, r.keys.jobsDue()).Result()
	if err != nil {
		return 0, fmt.Errorf("store: count jobs: %w", err)
	}
	return n, nil
}

// JobOf reads one job.
func (r *Redis) JobOf(ctx context.Context, id string) (JobStatus, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	f, err := r.rdb.HMGet(ctx, r.keys.job(id), "j", "state", "attempts", "err").Result()
	if err != nil {
		return JobStatus{}, fmt.Errorf("store: read job %s: %w", id, err)
	}
	raw, _ := f[0].(string)
	if raw == "" {
		return JobStatus{}, ErrNotFound
	}
	var s JobStatus
	if err := json.Unmarshal([]byte(raw), &s.Job); err != nil {
		return JobStatus{}, fmt.Errorf("store: job %s is unreadable: %w", id, err)
	}
	s.State, _ = f[1].(string)
	s.LastError, _ = f[3].(string)
	if a, _ := f[2].(string); a != "" {
		_, _ = fmt.Sscan(a, &s.Attempts) // our own script writes it as a number; unreadable reads as 0
	}
	return s, nil
}
