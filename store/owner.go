package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ErrNotOwner: the carrier has no attempt on the call (or its attempt cannot take the action).
// Its request was verified, but the call is not its own: nothing was written.
var ErrNotOwner = errors.New("store: the call does not belong to that carrier")

// Ownership lives in the call's hash, so the check and the write are one atomic step: field
// o:<carrier> is the attempt that carrier was given (0 for an inbound call's carrier),
// negative once that attempt was abandoned. See call.Claim; apply.lua reads the same field.

var (
	// linkCallScript points a call at a carrier call id if the carrier may. KEYS[1] call
	// hash; ARGV 1 carrier, 2 carrier call id, 3 attempt ('' from a webhook). Returns 1
	// linked, 0 no such call, -1 not the carrier's, -2 already linked to another call id.
	linkCallScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'created_at', 'carrier', 'carrier_call_id', 'o:' .. ARGV[1])
if not cur[1] then return 0 end
local claim = tonumber(cur[4])
if (not claim and cur[2] ~= ARGV[1]) or (claim and claim < 0) then return -1 end
if ARGV[3] == '' then
  if cur[3] and cur[3] ~= '' and cur[3] ~= ARGV[2] then return -2 end
elseif cur[4] ~= ARGV[3] then
  return -1
end
redis.call('HSET', KEYS[1], 'carrier', ARGV[1], 'carrier_call_id', ARGV[2])
return 1`)

	// abandonScript marks a carrier's attempt abandoned and hands back the carrier call id an
	// early callback of that attempt left in the record (then cleared), or ''. A carrier with
	// no claim stays a stranger. KEYS[1] call hash; ARGV 1 carrier, 2 attempt.
	abandonScript = redis.NewScript(`
if not redis.call('HGET', KEYS[1], 'o:' .. ARGV[1]) then return '' end
redis.call('HSET', KEYS[1], 'o:' .. ARGV[1], '-' .. ARGV[2])
local cur = redis.call('HMGET', KEYS[1], 'carrier', 'carrier_call_id')
if cur[1] == ARGV[1] and cur[2] and cur[2] ~= '' then
  redis.call('HSET', KEYS[1], 'carrier_call_id', '')
  return cur[2]
end
return ''`)
)

func (r *Redis) linkCall(ctx context.Context, callID, carrier string, n int, carrierCallID string) error {
	attempt := ""
	if n > 0 {
		attempt = strconv.Itoa(n)
	}
	res, err := linkCallScript.Run(ctx, r.rdb, []string{r.keys.call(callID)}, carrier, carrierCallID, attempt).Int()
	switch {
	case err != nil:
		return err
	case res == 0:
		return ErrNotFound
	case res == -1:
		return ErrNotOwner
	case res == -2:
		return fmt.Errorf("already linked to another carrier call: %w", ErrNotOwner)
	}
	return nil
}

// ClaimAttempt records that attempt n (from 1) of call callID goes to carrier. The placer
// calls it before sending the attempt's request, because the carrier's first callback may
// arrive before its answer.
func (r *Redis) ClaimAttempt(ctx context.Context, callID, carrier string, n int) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.rdb.HSet(ctx, r.keys.call(callID), "o:"+carrier, n).Err(); err != nil {
		return fmt.Errorf("store: claim attempt %d of %s for %s: %w", n, callID, carrier, err)
	}
	return nil
}

// AbandonAttempt records that we gave up on carrier's attempt n of call callID. From now on
// that carrier's events for the call are an orphan's (see call.Orphaned). It returns the
// carrier call id an early callback of the attempt had put in the record, if any: that call
// exists at the carrier and must be hung up.
func (r *Redis) AbandonAttempt(ctx context.Context, callID, carrier string, n int) (string, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	id, err := abandonScript.Run(ctx, r.rdb, []string{r.keys.call(callID)}, carrier, n).Text()
	if err != nil {
		return "", fmt.Errorf("store: abandon attempt %d of %s on %s: %w", n, callID, carrier, err)
	}
	return id, nil
}

// CheckOwner answers nil when carrier has a live claim on call callID (an attempt we have not
// abandoned, or the inbound call came in on it), ErrNotOwner when it has none, ErrNotFound
// when there is no such call. Media streams use it: audio of a call only flows from its own
// carrier.
func (r *Redis) CheckOwner(ctx context.Context, callID, carrier string) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	cur, err := r.rdb.HMGet(ctx, r.keys.call(callID), "created_at", "carrier", "o:"+carrier).Result()
	if err != nil {
		return fmt.Errorf("store: owner of %s: %w", callID, err)
	}
	str := func(i int) string { s, _ := cur[i].(string); return s }
	switch claim, claimErr := strconv.Atoi(str(2)); {
	case str(0) == "":
		return ErrNotFound
	case claimErr == nil && claim >= 0, str(2) == "" && str(1) == carrier:
		return nil
	}
	return ErrNotOwner
}
