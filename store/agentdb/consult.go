package agentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Consults: the first step of a warm transfer. The call's agent rings another agent to talk
// to it while the caller waits; the call stays the first agent's until it completes the
// transfer (the consulted agent then has it) or the consult ends. The offer names the
// consulted agent (Offer.Consult) meanwhile, and the consulted agent is reserved while it
// rings and busy with the call once it answers.

// ErrConsulting is returned for a call that has a consult already.
var ErrConsulting = errors.New("agentdb: the call has a consult going already")

var (
	// consult reserves agent ARGV[3] for a consult on call ARGV[1], answered by ARGV[2].
	consultScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'state', 'agent', 'consult')
if o[1] ~= 'answered' or o[2] ~= ARGV[2] then return 'gone' end
if ARGV[3] == ARGV[2] then return 'self' end
if o[3] and o[3] ~= '' then return 'consulting' end
local p = redis.call('HMGET', KEYS[3], 'state', 'until', 'instance', 'url')
if not p[1] then return 'offline' end
if p[1] == 'busy' then return 'busy' end
local ok = p[1] == 'available' or (p[1] == 'wrap-up' and tonumber(p[2] or '') ~= nil and tonumber(p[2]) <= tonumber(ARGV[5]))
if not ok then return 'away' end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[4]) then return 'ringing' end
redis.call('HSET', KEYS[1], 'consult', ARGV[3], 'consult_instance', p[3])
return 'ok'`)

	// answerConsult makes the consulted agent busy with the call, if its reservation stands.
	answerConsultScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'consult') ~= ARGV[2] or redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'gone' end
if redis.call('HGET', KEYS[3], 'session') ~= ARGV[3] then return 'replaced' end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[3], 'state', 'busy', 'since', ARGV[4], 'until', '0', 'call', ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[2])
return 'ok'`)

	// endConsult forgets the consult of agent ARGV[2], and its reservation if it still rings.
	endConsultScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'consult') == ARGV[2] then redis.call('HDEL', KEYS[1], 'consult', 'consult_instance') end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 'ok'`)

	// completeConsult gives the call to its consulted agent.
	completeConsultScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'state', 'agent', 'consult', 'consult_instance')
if o[1] ~= 'answered' or o[2] ~= ARGV[2] or o[3] ~= ARGV[3] then return 'gone' end
redis.call('HSET', KEYS[1], 'agent', ARGV[3], 'agent_instance', o[4])
redis.call('HDEL', KEYS[1], 'consult', 'consult_instance')
return 'ok'`)
)

// ConsultOffer rings agent to, for ringTimeout, to consult about the call agent from has
// answered. Errors are TransferOffer's, and ErrConsulting.
func (r *Store) ConsultOffer(ctx context.Context, callID, from, to string, ringTimeout time.Duration) (Offer, error) {
	if _, err := r.Agent(ctx, to); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Offer{}, ErrUnknownAgent
		}
		return Offer{}, err
	}
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := consultScript.Run(ctx, r.rdb,
		[]string{r.keys.offer(callID), r.keys.reservation(to), r.keys.presence(to)},
		callID, from, to, ringTimeout.Milliseconds(), time.Now().UnixMilli()).Text()
	if err != nil {
		return Offer{}, fmt.Errorf("agentdb: consult %s on %s: %w", to, callID, err)
	}
	if res == "consulting" {
		return Offer{}, ErrConsulting
	}
	if err := ringError(res); err != nil {
		return Offer{}, err
	}
	return r.Offer(ctx, callID)
}

// AnswerConsult makes agent, of session, busy with the call it was rung to consult on; it
// fails with ErrOfferGone when the consult no longer rings for it, ErrReplaced when session no
// longer owns the agent.
func (r *Store) AnswerConsult(ctx context.Context, callID, agent, session string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := answerConsultScript.Run(ctx, r.rdb,
		[]string{r.keys.offer(callID), r.keys.reservation(agent), r.keys.presence(agent), r.keys.idle()},
		callID, agent, session, time.Now().UnixMilli()).Text()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: answer the consult on %s as %s: %w", callID, agent, err)
	case res == "gone":
		return ErrOfferGone
	case res == "replaced":
		return ErrReplaced
	}
	return nil
}

// EndConsult ends agent's consult on the call (idempotent). The agent's presence is its
// session's to change.
func (r *Store) EndConsult(ctx context.Context, callID, agent string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	if err := endConsultScript.Run(ctx, r.rdb, []string{r.keys.offer(callID), r.keys.reservation(agent)}, callID, agent).Err(); err != nil {
		return fmt.Errorf("agentdb: end the consult on %s: %w", callID, err)
	}
	return nil
}

// CompleteConsult gives the call agent from has to to, the agent it consulted; ErrOfferGone
// if that is no longer the case.
func (r *Store) CompleteConsult(ctx context.Context, callID, from, to string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := completeConsultScript.Run(ctx, r.rdb, []string{r.keys.offer(callID)}, callID, from, to).Text()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: complete the transfer of %s: %w", callID, err)
	case res == "gone":
		return ErrOfferGone
	}
	return nil
}
