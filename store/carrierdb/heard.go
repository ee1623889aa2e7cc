package carrierdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// When each carrier last delivered anything (a callback, a webhook, a TwiML fetch), shared by
// every instance, for carrier-level liveness: a carrier that has accepted calls and delivered
// nothing at all for its callback deadline is silent, whatever the call rate.
//
//	<ns>:{cb:X}:heard   Redis's clock (unix ms) when an instance last wrote that it heard X.
//
// Writers stamp it with Redis's clock, not their own: instances' clocks need not agree, and a
// late write can only make the carrier look more recently heard, never silent by mistake.

var (
	// KEYS: 1 heard; ARGV: 1 ttl ms
	markHeardScript = redis.NewScript(`
local t = redis.call('TIME')
redis.call('SET', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 'PX', ARGV[1])
return 1`)

	// KEYS: 1 heard; ARGV: 1 window ms. Returns 1 if nothing was heard within the window.
	silentScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local heard = tonumber(redis.call('GET', KEYS[1]) or '0')
if now - heard >= tonumber(ARGV[1]) then return 1 end
return 0`)
)

// heardTTL outlives any callback deadline; a carrier unheard for longer is silent anyway.
const heardTTL = time.Hour

// MarkHeard records that carrier delivered something just now.
func (r *Store) MarkHeard(ctx context.Context, carrier string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	if err := markHeardScript.Run(ctx, r.sub.Client(), []string{r.keys.breaker(carrier, "heard")}, heardTTL.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("carrierdb: mark %s heard: %w", carrier, err)
	}
	return nil
}

// CarrierSilent reports whether no instance has heard from carrier within the last window.
func (r *Store) CarrierSilent(ctx context.Context, carrier string, window time.Duration) (bool, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := silentScript.Run(ctx, r.sub.Client(), []string{r.keys.breaker(carrier, "heard")}, window.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("carrierdb: is %s silent: %w", carrier, err)
	}
	return n == 1, nil
}
