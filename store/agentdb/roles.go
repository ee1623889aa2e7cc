package agentdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Role is what an agent may do beyond its own calls. The zero value is unknown; an agent
// stored without a role is an agent.
type Role int8

const (
	RoleUnknown    Role = iota
	RoleAgent           // takes and places its own calls
	RoleSupervisor      // also signs in to the console's staff views (the wallboard, history)
)

var roleNames = [...]string{RoleUnknown: "unknown", RoleAgent: "agent", RoleSupervisor: "supervisor"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return roleNames[RoleUnknown]
	}
	return roleNames[r]
}

// ParseRole reads a role by name ("agent", "supervisor"); anything else is RoleUnknown.
func ParseRole(name string) Role {
	for r, n := range roleNames {
		if n == name && r != int(RoleUnknown) {
			return Role(r)
		}
	}
	return RoleUnknown
}

// MarshalText makes a Role read as its name in JSON.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a role's name; an unknown name is an error.
func (r *Role) UnmarshalText(b []byte) error {
	v := ParseRole(string(b))
	if v == RoleUnknown {
		return fmt.Errorf("agentdb: unknown role %q (want agent or supervisor)", b)
	}
	*r = v
	return nil
}

// setRoleScript changes an existing agent's role; 0 when there is no such agent.
var setRoleScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'role', ARGV[1], 'updated_at', ARGV[2])
return 1`)

// SetAgentRole gives agent id a role; store.ErrNotFound if there is no such agent. It is a
// step of its own after PutAgent rather than part of it, so a new agent exists with the least
// privilege (agent) until its role is set, never the other way round.
func (r *Store) SetAgentRole(ctx context.Context, id string, role Role) error {
	if role == RoleUnknown {
		return fmt.Errorf("agentdb: set role of %s: unknown role", id)
	}
	if !ValidAgentID(id) {
		return store.ErrNotFound
	}
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	n, err := setRoleScript.Run(ctx, r.rdb, []string{r.keys.agent(id)}, role.String(), time.Now().UnixMilli()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: set role of %s: %w", id, err)
	case n == 0:
		return store.ErrNotFound
	}
	return nil
}
