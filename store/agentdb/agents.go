package agentdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Agents are the people who take and place calls in the softphone. Every agent key (records,
// presence, the idle index, reservations and call offers) shares the {agents} hash tag, so the
// scripts that look across agents, such as longest-idle routing, are valid on Redis Cluster.
// That puts all of them in one slot, which is fine for the thousands of agents a site has.

func (k keys) agentsPrefix() string         { return k.ns + ":{agents}:" }
func (k keys) agent(id string) string       { return k.agentsPrefix() + "agent:" + id }
func (k keys) agentIDs() string             { return k.agentsPrefix() + "ids" }
func (k keys) presence(id string) string    { return k.agentsPrefix() + "presence:" + id }
func (k keys) idle() string                 { return k.agentsPrefix() + "idle" }
func (k keys) reservation(id string) string { return k.agentsPrefix() + "res:" + id }
func (k keys) offer(callID string) string   { return k.agentsPrefix() + "offer:" + callID }
func (k keys) offerTried(callID string) string {
	return k.agentsPrefix() + "offer:" + callID + ":tried"
}

// ErrUnauthorized is returned when an agent's token is not valid.
var ErrUnauthorized = errors.New("agentdb: unauthorized")

// Agent is an agent's record. Its login token is never stored, only the token's SHA-256.
type Agent struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Role says what the agent may do beyond its own calls: a supervisor also signs in to the
	// console's staff views. Records written before roles existed read as RoleAgent.
	Role Role `json:"role"`
	// TokenID names the token the agent signed in with (set by AuthenticateAgent, and by
	// PutAgent when it issues one), so a session can tell whether its token is still the
	// agent's. It is a prefix of the token's hash, not the token, and is never shown.
	TokenID string `json:"-"`
}

// ValidAgentID reports whether id can name an agent: 1 to 63 of a-z, 0-9 and '-', starting
// with a letter or digit. The id is part of the agent's token and of Redis keys.
func ValidAgentID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// NewAgentToken returns a fresh login token for agent id: the id, a dot and 192 random bits.
// Carrying the id lets authentication read one record and compare hashes in constant time,
// instead of looking a secret up in an index.
func NewAgentToken(id string) string {
	var b [24]byte
	rand.Read(b[:])
	return id + "." + hex.EncodeToString(b[:])
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// putAgentScript creates an agent or renames it, and replaces its token hash only on creation
// or when asked to rotate, in one step so two admins racing cannot leave a record without a
// hash.
var putAgentScript = redis.NewScript(`
local created = redis.call('EXISTS', KEYS[1]) == 0
if created then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'hash', ARGV[3], 'created_at', ARGV[4], 'updated_at', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'name', ARGV[2], 'updated_at', ARGV[4])
  if ARGV[5] == '1' then
    redis.call('HSET', KEYS[1], 'hash', ARGV[3])
    -- Sessions signed in with the old token end, on every instance.
    redis.call('PUBLISH', ARGV[6], ARGV[1] .. ' ' .. string.sub(ARGV[3], 1, 16))
  end
end
return {created and 1 or 0, redis.call('HGET', KEYS[1], 'created_at'), redis.call('HGET', KEYS[1], 'role') or ''}`)

// PutAgent creates agent id with name and token, or renames an existing one. An existing
// agent keeps its token unless rotate is set. created says whether the agent is new; the
// token is in force when created or rotate; rotating ends, on every instance, the sessions
// signed in with the old token (see Listen).
func (r *Store) PutAgent(ctx context.Context, id, name, token string, rotate bool) (a Agent, created bool, err error) {
	if !ValidAgentID(id) {
		return Agent{}, false, fmt.Errorf("agentdb: invalid agent id %q", id)
	}
	if got, ok := agentIDOfToken(token); !ok || got != id {
		return Agent{}, false, errors.New("agentdb: the token does not belong to the agent")
	}
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	now := time.Now()
	flag := "0"
	if rotate {
		flag = "1"
	}
	res, err := putAgentScript.Run(ctx, r.rdb, []string{r.keys.agent(id), r.keys.agentIDs()},
		id, name, tokenHash(token), now.UnixMilli(), flag, r.keys.revokedChannel()).Slice()
	if err != nil {
		return Agent{}, false, fmt.Errorf("agentdb: put agent %s: %w", id, err)
	}
	createdAt, _ := res[1].(string)
	role := RoleAgent
	if s, _ := res[2].(string); ParseRole(s) != RoleUnknown {
		role = ParseRole(s)
	}
	a = Agent{ID: id, Name: name, CreatedAt: unixMilli(createdAt), UpdatedAt: time.UnixMilli(now.UnixMilli()).UTC(), Role: role}
	created = res[0].(int64) == 1
	if created || rotate {
		a.TokenID = tokenID(tokenHash(token))
	}
	return a, created, nil
}

func agentIDOfToken(token string) (string, bool) {
	id, secret, ok := strings.Cut(token, ".")
	return id, ok && ValidAgentID(id) && secret != ""
}

var agentFields = []string{"id", "name", "created_at", "updated_at", "hash", "role"}

// decodeAgent reads an agent's fields (agentFields, in order) and its token hash. TokenID is
// set from the hash, so a reader can tell later whether the token is still the same one.
func decodeAgent(f []any) (Agent, string, bool) {
	str := func(i int) string { s, _ := f[i].(string); return s }
	if str(0) == "" {
		return Agent{}, "", false
	}
	role := ParseRole(str(5))
	if role == RoleUnknown {
		role = RoleAgent
	}
	return Agent{ID: str(0), Name: str(1), CreatedAt: unixMilli(str(2)), UpdatedAt: unixMilli(str(3)), Role: role,
		TokenID: tokenID(str(4))}, str(4), true
}

// Agent reads one agent's record.
func (r *Store) Agent(ctx context.Context, id string) (Agent, error) {
	if !ValidAgentID(id) {
		return Agent{}, store.ErrNotFound
	}
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	f, err := r.rdb.HMGet(ctx, r.keys.agent(id), agentFields...).Result()
	if err != nil {
		return Agent{}, fmt.Errorf("agentdb: read agent %s: %w", id, err)
	}
	a, _, ok := decodeAgent(f)
	if !ok {
		return Agent{}, store.ErrNotFound
	}
	return a, nil
}

// Agents lists every agent, by id.
func (r *Store) Agents(ctx context.Context) ([]Agent, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	ids, err := r.rdb.SMembers(ctx, r.keys.agentIDs()).Result()
	if err != nil {
		return nil, fmt.Errorf("agentdb: list agents: %w", err)
	}
	slices.Sort(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, r.keys.agent(id), agentFields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("agentdb: list agents: %w", err)
	}
	out := make([]Agent, 0, len(ids))
	for _, c := range cmds {
		if a, _, ok := decodeAgent(c.Val()); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// noAgentHash is compared against when the token names no agent, so an unknown agent costs
// the same as a wrong token.
var noAgentHash = tokenHash("no such agent")

// AuthenticateAgent returns the agent a login token belongs to, or ErrUnauthorized. The
// token's hash is compared with the stored one in constant time.
func (r *Store) AuthenticateAgent(ctx context.Context, token string) (Agent, error) {
	id, ok := agentIDOfToken(token)
	if !ok || len(token) > 256 {
		return Agent{}, ErrUnauthorized
	}
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	f, err := r.rdb.HMGet(ctx, r.keys.agent(id), agentFields...).Result()
	if err != nil {
		return Agent{}, fmt.Errorf("agentdb: read agent %s: %w", id, err)
	}
	a, want, found := decodeAgent(f)
	if !found {
		want = noAgentHash
	}
	got := tokenHash(token)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !found {
		return Agent{}, ErrUnauthorized
	}
	a.TokenID = tokenID(want)
	return a, nil
}
