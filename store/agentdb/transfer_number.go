package agentdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

// Blind transfers to a phone number: the call's agent hands the caller to a number, which we
// call on a new outbound leg. The caller's offer stays answered, by nobody, and names the
// number and the leg (Offer.Number, Offer.NumberLeg); the leg has an offer of its own whose
// Bridge names the caller's call and whose holder is the caller's holder, so the leg's media
// stream is pointed where the caller's is. The leg's offer is not indexed as held: it moves
// with its caller's offer (a survivor's claim moves both, instances.go), so the bridge has
// one owner and the leg is never held as a call of its own.

var (
	// transferNumber hands call KEYS[1] (ARGV[1]), answered by ARGV[2], to number ARGV[4] on
	// leg ARGV[3], whose offer KEYS[2] it creates.
	transferNumberScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'state', 'agent', 'consult', 'holder', 'holder_url')
if o[1] ~= 'answered' or o[2] ~= ARGV[2] or ARGV[2] == '' then return 'gone' end
if o[3] and o[3] ~= '' then return 'consulting' end
redis.call('HSET', KEYS[1], 'agent', '', 'agent_instance', '', 'agent_url', '', 'number', ARGV[4],
  'number_leg', ARGV[3], 'transferred_by', ARGV[2], 'number_at', ARGV[5], 'number_answered', '0')
redis.call('HSET', KEYS[2], 'call', ARGV[3], 'direction', ARGV[7], 'from', '', 'to', ARGV[4], 'carrier', '',
  'state', 'answered', 'agent', '', 'holder', o[4], 'holder_url', o[5], 'created', ARGV[5], 'bridge', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 'ok'`)

	// numberLegFailed puts call KEYS[1] (ARGV[1]), whose leg ARGV[2] did not connect, back in
	// the queue (KEYS[2], the waiting index, from ARGV[3]), and ends the leg's offer KEYS[3].
	numberLegFailedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'state', 'ended')
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
local o = redis.call('HMGET', KEYS[1], 'state', 'number_leg')
if o[1] ~= 'answered' or o[2] ~= ARGV[2] then return 'gone' end
redis.call('HSET', KEYS[1], 'state', 'queued', 'agent', '')
redis.call('HDEL', KEYS[1], 'number', 'number_leg', 'number_at', 'number_answered')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 'ok'`)

	// numberLegAnswered marks call KEYS[1]'s leg ARGV[1] answered, if it is still its leg.
	numberLegAnsweredScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'number_leg') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'number_answered', '1')
return 1`)
)

// NumberLegAnswered records that callID's leg legID answered (its far end is bridged to the
// caller), so that an instance claiming the call re-points the leg too instead of waiting for
// its answer. ErrOfferGone if the call is no longer bridging to that leg.
func (r *Store) NumberLegAnswered(ctx context.Context, callID, legID string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := numberLegAnsweredScript.Run(ctx, r.rdb, []string{r.keys.offer(callID)}, legID).Int()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: leg %s of %s answered: %w", legID, callID, err)
	case n == 0:
		return ErrOfferGone
	}
	return nil
}

// TransferToNumber hands callID, answered by agent from, to number, on the outbound leg
// legID (whose offer it creates, for ttl, pointing at the call's holder). It fails with
// ErrOfferGone when the call is not from's, ErrConsulting when a consult is going. from's
// presence is its session's to change.
func (r *Store) TransferToNumber(ctx context.Context, callID, from, legID, number string, ttl time.Duration) (Offer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := transferNumberScript.Run(ctx, r.rdb, []string{r.keys.offer(callID), r.keys.offer(legID)},
		callID, from, legID, number, time.Now().UnixMilli(), ttl.Milliseconds(), call.Outbound.String()).Text()
	switch {
	case err != nil:
		return Offer{}, fmt.Errorf("agentdb: transfer %s to a number: %w", callID, err)
	case res == "consulting":
		return Offer{}, ErrConsulting
	case res != "ok":
		return Offer{}, ErrOfferGone
	}
	return r.Offer(ctx, callID)
}

// NumberLegFailed puts callID, whose transfer to a number on legID did not connect (busy, no
// answer, failed), back in the queue, ready to be rung again (RingBack); the leg's offer
// ends. ErrOfferGone if the call is no longer bridging to that leg.
func (r *Store) NumberLegFailed(ctx context.Context, callID, legID string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := numberLegFailedScript.Run(ctx, r.rdb,
		[]string{r.keys.offer(callID), r.keys.waiting(), r.keys.offer(legID)},
		callID, legID, time.Now().UnixMilli(), endedOfferTTL.Milliseconds()).Text()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: take %s back from its number: %w", callID, err)
	case res != "ok":
		return ErrOfferGone
	}
	return nil
}
