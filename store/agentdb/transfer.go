package agentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Transfers: an agent hands its call to one named agent (a blind transfer), who is reserved
// and rung for it as the queue would ring it, but chosen, not the longest idle. When that
// agent does not take the call, the call rings its transferring agent again (a ring-back),
// or waits in the queue.

// Errors of the transfer operations, besides those of the offers.
var (
	ErrUnknownAgent = errors.New("agentdb: no such agent")
	ErrAgentAway    = errors.New("agentdb: agent is not taking calls (away, or wrapping up)")
	ErrSameAgent    = errors.New("agentdb: the call is that agent's already")
)

// ringAgentScript reserves agent ARGV[2] for call ARGV[1] and rings it: for a transfer from
// ARGV[3], the call must be answered by that agent; for a ring-back (ARGV[3] empty), queued.
// A transfer's target must be available (or past its wrap-up); a ring-back may ring an agent
// still wrapping up (or, for a moment, busy with) the very call.
var ringAgentScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'state', 'agent')
if ARGV[3] ~= '' then
  if o[1] ~= 'answered' or o[2] ~= ARGV[3] then return 'gone' end
  if ARGV[2] == ARGV[3] then return 'self' end
elseif o[1] ~= 'queued' then return 'gone' end
local p = redis.call('HMGET', KEYS[3], 'state', 'until', 'instance', 'url', 'call')
if not p[1] then return 'offline' end
-- A ring-back may find the agent still busy with the very call: its session has released it
-- but not yet recorded the wrap-up.
if p[1] == 'busy' and not (ARGV[3] == '' and p[5] == ARGV[1]) then return 'busy' end
local ok = p[1] == 'available' or p[1] == 'busy' or (p[1] == 'wrap-up' and
  (ARGV[3] == '' or (tonumber(p[2] or '') ~= nil and tonumber(p[2]) <= tonumber(ARGV[5]))))
if not ok then return 'away' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[4]) then return 'ringing' end
redis.call('HSET', KEYS[1], 'state', 'ringing', 'agent', ARGV[2], 'agent_instance', p[3], 'agent_url', p[4])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[4], redis.call('PTTL', KEYS[1]))
return 'ok'`)

// TransferOffer rings agent to, for ringTimeout, for the call agent from has answered: the
// offer is OfferRinging for to from now on (AnswerOffer gives it the call; WithdrawOffer puts
// it back in the queue). from's presence is its session's to change. It fails with
// ErrUnknownAgent, ErrSameAgent, ErrAgentOffline, ErrAgentBusy, ErrAgentAway, ErrAgentRinging
// (to has another call ringing), or ErrOfferGone (the call is not from's any more).
func (r *Store) TransferOffer(ctx context.Context, callID, from, to string, ringTimeout time.Duration) (Offer, error) {
	if from == "" {
		return Offer{}, ErrOfferGone
	}
	if _, err := r.Agent(ctx, to); errors.Is(err, store.ErrNotFound) {
		return Offer{}, ErrUnknownAgent
	} else if err != nil {
		return Offer{}, err
	}
	return r.ringAgent(ctx, callID, from, to, ringTimeout)
}

// RingBack rings agent, for ringTimeout, for a queued call: the target of its transfer did not
// take it, and it goes back to the agent who transferred it. Errors are TransferOffer's; a
// call that is not queued any more fails with ErrOfferGone.
func (r *Store) RingBack(ctx context.Context, callID, agent string, ringTimeout time.Duration) (Offer, error) {
	return r.ringAgent(ctx, callID, "", agent, ringTimeout)
}

func (r *Store) ringAgent(ctx context.Context, callID, from, to string, ringTimeout time.Duration) (Offer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := ringAgentScript.Run(ctx, r.rdb,
		[]string{r.keys.offer(callID), r.keys.reservation(to), r.keys.presence(to), r.keys.offerTried(callID)},
		callID, to, from, ringTimeout.Milliseconds(), time.Now().UnixMilli()).Text()
	if err != nil {
		return Offer{}, fmt.Errorf("agentdb: ring %s for %s: %w", to, callID, err)
	}
	if err := ringError(res); err != nil {
		return Offer{}, err
	}
	return r.Offer(ctx, callID)
}

// ringError is the error a ring or consult script's answer stands for; nil for "ok".
func ringError(res string) error {
	switch res {
	case "gone":
		return ErrOfferGone
	case "self":
		return ErrSameAgent
	case "offline":
		return ErrAgentOffline
	case "busy":
		return ErrAgentBusy
	case "away":
		return ErrAgentAway
	case "ringing":
		return ErrAgentRinging
	}
	return nil
}
