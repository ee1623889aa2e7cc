package agentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Instance liveness and the calls each instance anchors. Every instance that holds carrier
// media keeps a heartbeat here; the calls whose media it holds (their offers' holder) are
// indexed per instance. When an instance's heartbeat lapses, a survivor claims its calls
// (ClaimOrphans) and has their carriers re-point the media at itself.
//
// The keys share the {agents} hash tag with the offers, so one script moves an offer and its
// index entry together on Redis Cluster. Deadlines are on Redis's clock (TIME), so instances
// whose clocks disagree still agree on who is dead.

func (k keys) instances() string { return k.agentsPrefix() + "instances" }
func (k keys) instanceURLs() string {
	return k.agentsPrefix() + "instance-urls"
}
func (k keys) anchored(instance string) string { return k.agentsPrefix() + "held:" + instance }

// redisNowLua is Redis's clock in milliseconds.
const redisNowLua = `
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

var (
	// instanceBeat moves an instance's deadline to Redis's now + ARGV[2] ms (a negative
	// ARGV[2] puts it in the past: the instance is leaving) and records its URL.
	// It returns 1 when the instance's previous deadline had passed, or it was not listed
	// (its first heartbeat, or forgotten once its calls were all claimed).
	instanceBeatScript = redis.NewScript(redisNowLua + `
local now = nowms()
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
if not prev or tonumber(prev) < now then return 1 end
return 0`)

	// claimOrphans moves up to ARGV[4] live calls of instances whose deadline passed (never
	// the caller's own) to the caller, ARGV[2] at ARGV[3]. For each it returns the offer's
	// state before the move, the agent it rang for or had then, and the offer afterwards. A
	// ringing call goes back to the queue (its reservation is dropped and the agent may be
	// offered it again: it did not decline); an ended or vanished offer only leaves the index;
	// a dead instance with nothing left is forgotten. A call bridged to a number takes its
	// leg's offer along (the leg is not indexed: it is its caller's), so the leg's media is
	// pointed at the same instance as the caller's.
	claimOrphansScript = redis.NewScript(redisNowLua + `
local prefix, me, url, want = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowms(), 'LIMIT', 0, 32)
local out = {}
for _, d in ipairs(dead) do
  if d ~= me then
    local set = prefix .. 'held:' .. d
    local ids = redis.call('SMEMBERS', set)
    for _, id in ipairs(ids) do
      if #out >= want then break end
      redis.call('SREM', set, id)
      local key = prefix .. 'offer:' .. id
      local o = redis.call('HMGET', key, 'state', 'holder', 'agent')
      if o[1] and o[1] ~= 'ended' and o[2] == d then
        if o[1] == 'ringing' then
          local res = prefix .. 'res:' .. o[3]
          if redis.call('GET', res) == id then redis.call('DEL', res) end
          redis.call('SREM', key .. ':tried', o[3])
          redis.call('HSET', key, 'state', 'queued', 'agent', '', 'agent_instance', '', 'agent_url', '')
        end
        redis.call('HSET', key, 'holder', me, 'holder_url', url)
        local leg = redis.call('HGET', key, 'number_leg')
        if leg and leg ~= '' then
          local lk = prefix .. 'offer:' .. leg
          local ls = redis.call('HMGET', lk, 'state', 'bridge')
          if ls[1] and ls[1] ~= 'ended' and ls[2] == id then
            redis.call('HSET', lk, 'holder', me, 'holder_url', url)
          end
        end
        redis.call('SADD', prefix .. 'held:' .. me, id)
        table.insert(out, {o[1], o[3] or '', redis.call('HGETALL', key)})
      end
    end
    if redis.call('SCARD', set) == 0 then
      redis.call('ZREM', KEYS[1], d)
      redis.call('HDEL', KEYS[2], d)
    end
    if #out >= want then break end
  end
end
return out`)
)

// InstanceHeartbeat says instance is alive for ttl more (on Redis's clock), reached at url.
// lapsed reports that its previous deadline had passed or that it was not listed: unless this
// is its first heartbeat, it stalled or lost Redis, and other instances may have claimed its
// calls meanwhile.
func (r *Store) InstanceHeartbeat(ctx context.Context, instance, url string, ttl time.Duration) (lapsed bool, err error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := instanceBeatScript.Run(ctx, r.rdb, []string{r.keys.instances(), r.keys.instanceURLs()},
		instance, ttl.Milliseconds(), url).Int()
	if err != nil {
		return false, fmt.Errorf("agentdb: heartbeat of instance %s: %w", instance, err)
	}
	return n == 1, nil
}

// LeaveInstances says instance is stopping: its deadline is put in the past, so the other
// instances claim its calls at once instead of after its heartbeat lapses.
func (r *Store) LeaveInstances(ctx context.Context, instance string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	err := instanceBeatScript.Run(ctx, r.rdb, []string{r.keys.instances(), r.keys.instanceURLs()},
		instance, -1, "").Err()
	if err != nil {
		return fmt.Errorf("agentdb: instance %s leaving: %w", instance, err)
	}
	return nil
}

// InstanceAlive reports whether instance's heartbeat deadline is still ahead.
func (r *Store) InstanceAlive(ctx context.Context, instance string) (bool, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	var score *redis.FloatCmd
	var now *redis.TimeCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		score = p.ZScore(ctx, r.keys.instances(), instance)
		now = p.Time(ctx)
		return nil
	})
	if errors.Is(score.Err(), redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("agentdb: is instance %s alive: %w", instance, err)
	}
	return int64(score.Val()) > now.Val().UnixMilli(), nil
}

// OtherInstancesAlive counts the instances other than instance whose heartbeat deadline is
// still ahead: those that could take its calls over.
func (r *Store) OtherInstancesAlive(ctx context.Context, instance string) (int, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := countAliveScript.Run(ctx, r.rdb, []string{r.keys.instances()}, instance).Int()
	if err != nil {
		return 0, fmt.Errorf("agentdb: count live instances: %w", err)
	}
	return n, nil
}

var countAliveScript = redis.NewScript(redisNowLua + `
local n = redis.call('ZCOUNT', KEYS[1], '(' .. nowms(), '+inf')
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
if mine and tonumber(mine) > nowms() then n = n - 1 end
return n`)

// OtherInstanceURLs returns the public URLs of the live instances other than instance (in
// no particular order): where a carrier can be sent if instance is gone.
func (r *Store) OtherInstanceURLs(ctx context.Context, instance string) ([]string, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	urls, err := otherURLsScript.Run(ctx, r.rdb, []string{r.keys.instances(), r.keys.instanceURLs()}, instance).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("agentdb: live instances' URLs: %w", err)
	}
	return urls, nil
}

var otherURLsScript = redis.NewScript(redisNowLua + `
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. nowms(), '+inf', 'LIMIT', 0, 64)) do
  if id ~= ARGV[1] then
    local url = redis.call('HGET', KEYS[2], id)
    if url and url ~= '' then table.insert(out, url) end
  end
end
return out`)

// ClaimedOffer is a call taken over from a dead instance: Offer as it is now (held by the
// claimer), Prev its state before (OfferRinging came back as OfferQueued), PrevAgent the
// agent it rang for or had.
type ClaimedOffer struct {
	Offer     Offer
	Prev      OfferState
	PrevAgent string
}

// ClaimOrphans moves up to max live calls of instances whose heartbeat lapsed to instance
// (reached at url), atomically: two instances claiming at once never get the same call. A
// call that rang for an agent is queued again; ended calls only leave the index. It is one
// cheap round trip when no instance is dead.
func (r *Store) ClaimOrphans(ctx context.Context, instance, url string, max int) ([]ClaimedOffer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := claimOrphansScript.Run(ctx, r.rdb, []string{r.keys.instances(), r.keys.instanceURLs()},
		r.keys.agentsPrefix(), instance, url, max).Slice()
	if err != nil {
		return nil, fmt.Errorf("agentdb: claim the calls of dead instances: %w", err)
	}
	out := make([]ClaimedOffer, 0, len(res))
	for _, item := range res {
		parts, ok := item.([]any)
		if !ok || len(parts) != 3 {
			continue
		}
		prev, _ := parts[0].(string)
		agent, _ := parts[1].(string)
		flat, _ := parts[2].([]any)
		out = append(out, ClaimedOffer{Offer: decodeOffer(flat), Prev: ParseOfferState(prev), PrevAgent: agent})
	}
	return out, nil
}

// Anchored returns the ids of the calls whose media instance holds, as the index says.
func (r *Store) Anchored(ctx context.Context, instance string) ([]string, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	ids, err := r.rdb.SMembers(ctx, r.keys.anchored(instance)).Result()
	if err != nil {
		return nil, fmt.Errorf("agentdb: calls anchored on %s: %w", instance, err)
	}
	return ids, nil
}
