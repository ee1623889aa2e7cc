package agentdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// An agent's sessions end at once, on every instance, when its token is rotated or the agent
// is deleted: the change publishes "<agent> <token id>" on the revoked channel (an empty token
// id: the agent is gone), and each instance ends the agent's sessions signed in with another
// token. Pub/Sub may lose the message, so Heartbeat checks the token too.

func (k keys) revokedChannel() string { return k.revoked }

// ErrRevoked is returned by Heartbeat to a session whose agent was deleted or whose token was
// rotated after it signed in.
var ErrRevoked = errors.New("agentdb: agent's token revoked")

// tokenID is the part of a token's hash that names it to sessions and notices.
func tokenID(hash string) string { return hash[:min(16, len(hash))] }

// deleteAgentScript removes an agent: its record and token hash, its presence, its place in
// the idle index and its reservation, and tells every instance to end its sessions. It
// returns 0 for an agent that does not exist, and changes nothing then.
var deleteAgentScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[5])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ')
return 1`)

// DeleteAgent removes agent id and its presence; its token stops working at once and its
// live sessions end on every instance. store.ErrNotFound if there is no such agent.
func (r *Store) DeleteAgent(ctx context.Context, id string) error {
	if !ValidAgentID(id) {
		return store.ErrNotFound
	}
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := deleteAgentScript.Run(ctx, r.rdb, []string{r.keys.agent(id), r.keys.agentIDs(), r.keys.presence(id),
		r.keys.idle(), r.keys.reservation(id)}, id, r.keys.revokedChannel()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: delete agent %s: %w", id, err)
	case n == 0:
		return store.ErrNotFound
	}
	return nil
}
