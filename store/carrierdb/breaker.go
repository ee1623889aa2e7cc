package carrierdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Shared circuit-breaker state, one set of keys per carrier under the hash tag {cb:<carrier>}
// so each script touches one slot (valid on Redis Cluster):
//
//	<ns>:{cb:X}:open      exists while the breaker is open; its PTTL is the time left. Readers
//	                      use the PTTL, not a timestamp, so instances' clocks need not agree.
//	<ns>:{cb:X}:halfopen  set when the breaker opens, cleared when a probe succeeds: once the
//	                      open key has expired the carrier is half-open cluster-wide.
//	<ns>:{cb:X}:probe     the one instance allowed to probe a half-open carrier (SET NX PX).
//	<ns>:{cb:X}:force     "open" or "closed" while an admin forces the breaker; absent: auto.
//	<ns>:{cb:X}:w         the rolling window: fields r:<bucket>, f:<bucket>, and cons, the
//	                      consecutive failures across every instance.
//
// Nothing here is on the call path: instances read these keys in the background (a Pub/Sub
// wake-up on <ns>:breakers and a poll as a backstop) and record outcomes after the fact.

func (k keys) breaker(carrier, part string) string { return k.ns + ":{cb:" + carrier + "}:" + part }
func (k keys) breakerChannel() string              { return k.ns + ":breakers" }

// BreakerPolicy is when the shared window trips the breaker; it mirrors the carrier's
// breaker settings.
type BreakerPolicy struct {
	FailureThreshold int           // consecutive failures
	FailureRatio     float64       // with at least MinRequests in the window
	MinRequests      int           //
	Window           time.Duration // rolling, in buckets of BucketPeriod
	BucketPeriod     time.Duration //
	OpenTimeout      time.Duration // how long an opened breaker stays open
}

// BreakerShared is what Redis says about one carrier's breaker.
type BreakerShared struct {
	OpenFor  time.Duration // time left open; 0 if not open
	HalfOpen bool          // opened and not yet closed by a successful probe
	Force    string        // "open", "closed" or "" (auto)
	Prober   string        // the instance probing now, if any
}

// BreakerWindow is the shared rolling window of one carrier.
type BreakerWindow struct {
	Requests            int64 `json:"requests"`
	Failures            int64 `json:"failures"`
	ConsecutiveFailures int64 `json:"consecutive_failures"`
}

var (
	// recordOutcome counts one outcome in the rolling window and opens the breaker when the
	// policy says so. Buckets are numbered by Redis's clock, so every instance fills the same
	// ones. A breaker that is open, half-open (a probe decides) or forced does not trip again.
	//
	// KEYS: 1 window, 2 open, 3 halfopen, 4 force
	// ARGV: 1 failed (0/1), 2 bucket ms, 3 buckets, 4 threshold, 5 ratio, 6 min requests,
	//       7 open ms, 8 channel, 9 carrier, 10 halfopen ttl ms
	// Returns 1 if this outcome opened the breaker, else 0.
	recordScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local b = math.floor(now / period)
redis.call('HINCRBY', KEYS[1], 'r:' .. b, 1)
local cons
if ARGV[1] == '1' then
  redis.call('HINCRBY', KEYS[1], 'f:' .. b, 1)
  cons = redis.call('HINCRBY', KEYS[1], 'cons', 1)
else
  redis.call('HSET', KEYS[1], 'cons', 0)
  cons = 0
end
redis.call('PEXPIRE', KEYS[1], period * n * 2)
if redis.call('HLEN', KEYS[1]) > 2 * n + 8 then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    local fb = tonumber(string.sub(f, 3))
    if fb and fb <= b - n then redis.call('HDEL', KEYS[1], f) end
  end
end
if ARGV[1] ~= '1' or redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1
   or redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
local req, fail = 0, 0
for i = b - n + 1, b do
  req = req + tonumber(redis.call('HGET', KEYS[1], 'r:' .. i) or '0')
  fail = fail + tonumber(redis.call('HGET', KEYS[1], 'f:' .. i) or '0')
end
if cons < tonumber(ARGV[4]) and (req < tonumber(ARGV[6]) or fail / req < tonumber(ARGV[5])) then
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[7])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[10])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[8], ARGV[9] .. ' open')
return 1`)

	// openBreaker opens the breaker for ARGV[1] ms. With ARGV[4] = 'reopen' it does so even when
	// half-open (a failed probe); otherwise only when the breaker is closed and not forced (a
	// local breaker tripped), so stale local trips cannot disturb a probe in progress.
	//
	// KEYS: 1 open, 2 halfopen, 3 force, 4 window, 5 probe
	// ARGV: 1 open ms, 2 channel, 3 carrier, 4 mode, 5 halfopen ttl ms
	openScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if ARGV[4] ~= 'reopen' and (redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1) then
  return 0
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' open')
return 1`)

	// closeBreaker ends a half-open breaker after a successful probe: the window starts empty.
	// KEYS: 1 open, 2 halfopen, 3 window, 4 probe; ARGV: 1 channel, 2 carrier
	closeScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' closed')
return n`)

	// releaseProbe drops the probe claim only if this instance still holds it.
	releaseProbeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// halfOpenTTL bounds how long a breaker nobody probes stays half-open: long enough for any
// probe, short enough that a deleted carrier's keys go away.
const halfOpenTTL = 24 * time.Hour

// RecordBreakerOutcome counts one outcome of a request to carrier in the shared window and
// reports whether it opened the breaker.
func (r *Store) RecordBreakerOutcome(ctx context.Context, carrier string, failed bool, p BreakerPolicy) (bool, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	period := max(p.BucketPeriod, 10*time.Millisecond)
	buckets := max(int64(p.Window/period), 1)
	f := "0"
	if failed {
		f = "1"
	}
	k := func(part string) string { return r.keys.breaker(carrier, part) }
	n, err := recordScript.Run(ctx, r.sub.Client(), []string{k("w"), k("open"), k("halfopen"), k("force")},
		f, period.Milliseconds(), buckets, p.FailureThreshold, strconv.FormatFloat(p.FailureRatio, 'g', -1, 64),
		p.MinRequests, max(p.OpenTimeout, time.Millisecond).Milliseconds(), r.keys.breakerChannel(), carrier,
		halfOpenTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("carrierdb: record breaker outcome for %s: %w", carrier, err)
	}
	return n == 1, nil
}

// OpenBreaker opens carrier's shared breaker for openFor, unless it is open, half-open or
// forced already; with reopen (a failed probe) it opens a half-open breaker again. It reports
// whether it opened the breaker.
func (r *Store) OpenBreaker(ctx context.Context, carrier string, openFor time.Duration, reopen bool) (bool, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	mode := "trip"
	if reopen {
		mode = "reopen"
	}
	k := func(part string) string { return r.keys.breaker(carrier, part) }
	n, err := openScript.Run(ctx, r.sub.Client(), []string{k("open"), k("halfopen"), k("force"), k("w"), k("probe")},
		max(openFor, time.Millisecond).Milliseconds(), r.keys.breakerChannel(), carrier, mode,
		halfOpenTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("carrierdb: open breaker %s: %w", carrier, err)
	}
	return n == 1, nil
}

// CloseBreaker closes carrier's shared breaker (a probe succeeded) and empties its window.
func (r *Store) CloseBreaker(ctx context.Context, carrier string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	k := func(part string) string { return r.keys.breaker(carrier, part) }
	err := closeScript.Run(ctx, r.sub.Client(), []string{k("open"), k("halfopen"), k("w"), k("probe")},
		r.keys.breakerChannel(), carrier).Err()
	if err != nil {
		return fmt.Errorf("carrierdb: close breaker %s: %w", carrier, err)
	}
	return nil
}

// ErrNotHalfOpen is ClaimProbe's answer when the breaker is no longer half-open: a probe
// elsewhere already closed it (this instance has not heard yet), so there is nothing to probe.
var ErrNotHalfOpen = errors.New("carrierdb: breaker is not half-open")

// claimProbeScript claims the probe only while the breaker is still half-open. Without that
// check an instance that has not yet heard of a close would find the claim gone (closing
// deletes it) and send a second "trial" call.
// KEYS: 1 halfopen, 2 probe; ARGV: 1 holder, 2 ttl ms
var claimProbeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`)

// ClaimProbe makes holder the one instance that probes carrier's half-open breaker, for at
// most ttl; false if another instance holds the claim, ErrNotHalfOpen if the breaker closed.
func (r *Store) ClaimProbe(ctx context.Context, carrier, holder string, ttl time.Duration) (bool, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := claimProbeScript.Run(ctx, r.sub.Client(), []string{r.keys.breaker(carrier, "halfopen"), r.keys.breaker(carrier, "probe")},
		holder, ttl.Milliseconds()).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("carrierdb: claim probe of %s: %w", carrier, err)
	case n < 0:
		return false, ErrNotHalfOpen
	}
	return n == 1, nil
}

// ReleaseProbe gives up holder's claim on probing carrier, if it still has it.
func (r *Store) ReleaseProbe(ctx context.Context, carrier, holder string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	return releaseProbeScript.Run(ctx, r.sub.Client(), []string{r.keys.breaker(carrier, "probe")}, holder).Err()
}

// ForceBreaker sets an admin's override of carrier's breaker ("open", "closed", or "" for
// auto) and records it in the audit log. The override and the audit entry live in different
// hash slots, so they are two writes; the override goes first, so the log never claims a
// change that did not happen.
func (r *Store) ForceBreaker(ctx context.Context, carrier, force string, a store.Audit) error {
	opCtx, cancel := r.sub.OpCtx(ctx)
	var err error
	switch force {
	case "open", "closed":
		err = r.sub.Client().Set(opCtx, r.keys.breaker(carrier, "force"), force, 0).Err()
	case "":
		err = r.sub.Client().Del(opCtx, r.keys.breaker(carrier, "force")).Err()
	default:
		err = fmt.Errorf("unknown force %q", force)
	}
	if err == nil {
		err = r.sub.Client().Publish(opCtx, r.keys.breakerChannel(), carrier+" force").Err()
	}
	cancel()
	if err != nil {
		return fmt.Errorf("carrierdb: force breaker %s: %w", carrier, err)
	}
	return r.Audited(ctx, a)
}

// BreakerStates reads the shared state of each carrier's breaker in one pipeline.
func (r *Store) BreakerStates(ctx context.Context, carriers []string) (map[string]BreakerShared, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	type cmds struct {
		open     *redis.DurationCmd
		halfOpen *redis.IntCmd
		force    *redis.StringCmd
		probe    *redis.StringCmd
	}
	got := make([]cmds, len(carriers))
	_, err := r.sub.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range carriers {
			got[i] = cmds{
				open:     p.PTTL(ctx, r.keys.breaker(c, "open")),
				halfOpen: p.Exists(ctx, r.keys.breaker(c, "halfopen")),
				force:    p.Get(ctx, r.keys.breaker(c, "force")),
				probe:    p.Get(ctx, r.keys.breaker(c, "probe")),
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("carrierdb: read breakers: %w", err)
	}
	out := make(map[string]BreakerShared, len(carriers))
	for i, c := range carriers {
		s := BreakerShared{HalfOpen: got[i].halfOpen.Val() == 1, Force: got[i].force.Val(), Prober: got[i].probe.Val()}
		// PTTL answers -2 (no key) or -1 (no expiry) as negative durations.
		if d := got[i].open.Val(); d > 0 {
			s.OpenFor = d
		}
		out[c] = s
	}
	return out, nil
}

// BreakerWindowOf sums carrier's shared rolling window as of now, for the admin view.
func (r *Store) BreakerWindowOf(ctx context.Context, carrier string, p BreakerPolicy) (BreakerWindow, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	all, err := r.sub.Client().HGetAll(ctx, r.keys.breaker(carrier, "w")).Result()
	if err != nil {
		return BreakerWindow{}, fmt.Errorf("carrierdb: read breaker window of %s: %w", carrier, err)
	}
	period := max(p.BucketPeriod, 10*time.Millisecond)
	now := time.Now().UnixMilli() / period.Milliseconds()
	oldest := now - int64(p.Window/period)
	var w BreakerWindow
	for f, v := range all {
		n, _ := strconv.ParseInt(v, 10, 64)
		if f == "cons" {
			w.ConsecutiveFailures = n
			continue
		}
		kind, bucket, _ := strings.Cut(f, ":")
		if b, err := strconv.ParseInt(bucket, 10, 64); err != nil || b <= oldest {
			continue
		}
		switch kind {
		case "r":
			w.Requests += n
		case "f":
			w.Failures += n
		}
	}
	return w, nil
}

// WatchBreakers calls changed with a carrier's id whenever any instance opens, closes or
// forces its breaker, and with "" each time the subscription is (re)established, when a
// message may have been missed. It returns when ctx ends.
func (r *Store) WatchBreakers(ctx context.Context, changed func(carrier string)) error {
	return r.sub.Subscribe(ctx, []string{r.keys.breakerChannel()}, func(string) { changed("") }, func(_, payload string) {
		carrier, _, _ := strings.Cut(payload, " ")
		changed(carrier)
	})
}
