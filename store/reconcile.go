package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

// The reconciler's shared schedule: which calls are due a check against their carrier, and
// which checks an instance has claimed. Any instance may claim due checks; exactly one holds
// each, under a lease. A claim whose lease runs out (its instance was killed, or stalled) is
// claimable again, so no check is lost with an instance.
//
// Three keys, one hash tag, so the scripts are valid on Redis Cluster:
//
//	due      ZSET call id -> when its next check is due (unix ms)
//	claimed  ZSET call id -> when the claim's lease runs out (unix ms); the score is the fence
//	forced   SET  call ids whose next check must ask the carrier even if the call had an
//	         event lately (a media stream closed, a carrier's breaker closed)
//
// The apply path writes none of them: calls enter the schedule from the active-call index,
// which the apply script already keeps (ActiveSince, ScheduleReconcile), and an event on a call does not move
// its check; the claimer reads the call's updated_at instead and reschedules without asking
// the carrier when the call had an event lately.

var (
	// reconcileFeedScript adds calls to the schedule unless they are in it (due or claimed) already.
	// KEYS due, claimed; ARGV[1] delay ms, then pairs of call id, created (unix ms).
	reconcileFeedScript = redis.NewScript(`
local delay, n = tonumber(ARGV[1]), 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if not redis.call('ZSCORE', KEYS[2], id) then
    n = n + redis.call('ZADD', KEYS[1], 'NX', tonumber(ARGV[i + 1]) + delay, id)
  end
end
return n`)

	// reconcileClaimScript takes up to limit checks: first claims whose lease ran out, then due checks,
	// and gives each a lease. KEYS due, claimed, forced; ARGV now, lease ms, limit.
	// Returns {lease until, id, forced (0/1), id, forced, ...}.
	reconcileClaimScript = redis.NewScript(`
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[3])
local lease = now + tonumber(ARGV[2])
local out = {lease}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
local due = {}
if #expired < limit then
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #expired)
end
for _, ids in ipairs({expired, due}) do
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], lease, id)
    out[#out + 1] = id
    out[#out + 1] = redis.call('SISMEMBER', KEYS[3], id)
  end
end
return out`)

	// reconcileSettleScript ends a claim if it still holds the lease: the call is rescheduled at next,
	// or dropped when next is ''. KEYS due, claimed, forced; ARGV id, lease, next, forced.
	// Returns 1, or 0 when the lease was lost (another instance took the check over).
	reconcileSettleScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not s or tonumber(s) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[4] == '1' or ARGV[3] == '' then redis.call('SREM', KEYS[3], ARGV[1]) end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1`)

	// reconcileExpediteScript makes checks due at ARGV[1] at the latest, and forced. A claimed check is
	// only marked forced: its owner reschedules it, and the next check asks the carrier.
	// KEYS due, claimed, forced; ARGV at, ids...
	reconcileExpediteScript = redis.NewScript(`
local at = tonumber(ARGV[1])
for i = 2, #ARGV do
  local id = ARGV[i]
  redis.call('SADD', KEYS[3], id)
  if not redis.call('ZSCORE', KEYS[2], id) then
    local s = redis.call('ZSCORE', KEYS[1], id)
    if not s or tonumber(s) > at then redis.call('ZADD', KEYS[1], at, id) end
  end
end
return #ARGV - 1`)
)

func (k keys) reconcile() []string {
	return []string{k.ns + ":reconcile:{due}", k.ns + ":reconcile:{due}:claimed", k.ns + ":reconcile:{due}:forced"}
}

// ReconcileClaim is one check an instance holds. Lease is the claim's fence: settling with
// it fails once another instance has taken the check over.
type ReconcileClaim struct {
	CallID string
	Lease  int64 // unix ms the lease runs out
	// Forced: ask the carrier even if the call had an event lately.
	Forced bool
}

// ActiveEntry is one call in the active-call index: its id and when it was created (unix ms).
type ActiveEntry struct {
	CallID  string
	Created int64
}

// ActiveSince reads up to limit calls that entered the active-call index after since (unix ms,
// exclusive), oldest first.
func (r *Redis) ActiveSince(ctx context.Context, since int64, limit int64) ([]ActiveEntry, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	zs, err := r.rdb.ZRangeByScoreWithScores(ctx, r.keys.active(), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(since, 10), Max: "+inf", Count: limit}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read active calls: %w", err)
	}
	out := make([]ActiveEntry, len(zs))
	for i, z := range zs {
		id, _ := z.Member.(string)
		out[i] = ActiveEntry{CallID: id, Created: int64(z.Score)}
	}
	return out, nil
}

// ScheduleReconcile schedules a check of each call delay after it was created, unless the
// call is scheduled (due or claimed) already: instances may schedule the same calls.
func (r *Redis) ScheduleReconcile(ctx context.Context, delay time.Duration, calls []ActiveEntry) error {
	if len(calls) == 0 {
		return nil
	}
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	args := make([]any, 0, 1+2*len(calls))
	args = append(args, delay.Milliseconds())
	for _, c := range calls {
		args = append(args, c.CallID, c.Created)
	}
	if err := reconcileFeedScript.Run(ctx, r.rdb, r.keys.reconcile()[:2], args...).Err(); err != nil {
		return fmt.Errorf("store: schedule reconcile checks: %w", err)
	}
	return nil
}

// SweepReconcile schedules every active call that has no check yet, each due delay after it
// was created (so an old call is due at once). An instance does it when it starts.
func (r *Redis) SweepReconcile(ctx context.Context, delay time.Duration) error {
	const page = 1000
	since := int64(-1 << 62)
	for {
		calls, err := r.ActiveSince(ctx, since, page)
		if err != nil {
			return err
		}
		if err := r.ScheduleReconcile(ctx, delay, calls); err != nil {
			return err
		}
		if len(calls) < page {
			return nil
		}
		// The next page starts in the millisecond the last one ended in: calls created in it
		// may lie beyond the page, and scheduling one twice changes nothing.
		if last := calls[len(calls)-1].Created; last-1 > since {
			since = last - 1
		} else {
			since = last
		}
	}
}

// ClaimReconcile takes up to limit checks that are due at now (or whose lease ran out), each
// under a lease of the given length.
func (r *Redis) ClaimReconcile(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ReconcileClaim, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	res, err := reconcileClaimScript.Run(ctx, r.rdb, r.keys.reconcile(), now.UnixMilli(), lease.Milliseconds(), limit).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: claim reconcile checks: %w", err)
	}
	until, _ := res[0].(int64)
	claims := make([]ReconcileClaim, 0, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		forced, _ := res[i+1].(int64)
		claims = append(claims, ReconcileClaim{CallID: id, Lease: until, Forced: forced == 1})
	}
	return claims, nil
}

// SettleReconcile ends a claim: the call's next check is due at next, or, when next is zero,
// the call leaves the schedule (it ended, or no longer exists).
func (r *Redis) SettleReconcile(ctx context.Context, c ReconcileClaim, next time.Time) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	at, forced := "", "0"
	if !next.IsZero() {
		at = strconv.FormatInt(next.UnixMilli(), 10)
	}
	if c.Forced {
		forced = "1"
	}
	n, err := reconcileSettleScript.Run(ctx, r.rdb, r.keys.reconcile(), c.CallID, c.Lease, at, forced).Int()
	switch {
	case err != nil:
		return fmt.Errorf("store: settle reconcile check of %s: %w", c.CallID, err)
	case n == 0:
		return ErrLeaseLost
	}
	return nil
}

// ExpediteReconcile makes the checks of ids due at at (unless due sooner) and forced: they
// ask the carrier whatever the calls' last events.
func (r *Redis) ExpediteReconcile(ctx context.Context, at time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	args := make([]any, 0, 1+len(ids))
	args = append(args, at.UnixMilli())
	for _, id := range ids {
		args = append(args, id)
	}
	if err := reconcileExpediteScript.Run(ctx, r.rdb, r.keys.reconcile(), args...).Err(); err != nil {
		return fmt.Errorf("store: expedite reconcile checks: %w", err)
	}
	return nil
}

// ReconcileBacklog counts the checks due at now but not claimed, and those claimed.
func (r *Redis) ReconcileBacklog(ctx context.Context, now time.Time) (due, claimed int64, err error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	k := r.keys.reconcile()
	var d, c *redis.IntCmd
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		d = p.ZCount(ctx, k[0], "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		c = p.ZCard(ctx, k[1])
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: reconcile backlog: %w", err)
	}
	return d.Val(), c.Val(), nil
}

// CallHead is the part of a call record a reconcile check needs.
type CallHead struct {
	ID            string
	Found         bool
	State         call.State
	Carrier       string
	CarrierCallID string
	UpdatedAt     time.Time
}

// CallHeads reads the heads of calls in one round trip.
func (r *Redis) CallHeads(ctx context.Context, ids []string) ([]CallHead, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, r.keys.call(id), "id", "state", "carrier", "carrier_call_id", "updated_at")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: read calls to reconcile: %w", err)
	}
	out := make([]CallHead, len(ids))
	for i, cmd := range cmds {
		f := cmd.Val()
		str := func(j int) string { s, _ := f[j].(string); return s }
		h := CallHead{ID: ids[i], Found: str(0) != "", Carrier: str(2), CarrierCallID: str(3), UpdatedAt: unixMilli(str(4))}
		h.State, _ = call.ParseState(str(1))
		out[i] = h
	}
	return out, nil
}

// ActiveCallIDs lists the ids in the active-call index (a hint: some may have ended).
func (r *Redis) ActiveCallIDs(ctx context.Context) ([]string, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	ids, err := r.rdb.ZRange(ctx, r.keys.active(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list active calls: %w", err)
	}
	return ids, nil
}
