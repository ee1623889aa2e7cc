package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

// LiveCalls lists calls that have not ended, oldest first, at most limit of them, without
// their histories: two round trips whatever the number, for readers that poll, such as the
// console's wallboard (ActiveCalls reads each call and its history one after the other).
// Like ActiveCalls it skips the index's stale entries; it leaves repairing them to
// ActiveCalls and the reconciler.
func (r *Redis) LiveCalls(ctx context.Context, limit int) ([]call.Call, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	ids, err := r.rdb.ZRange(ctx, r.keys.active(), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list live calls: %w", err)
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, r.keys.call(id), callFields...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: read live calls: %w", err)
	}
	calls := make([]call.Call, 0, len(ids))
	for _, cmd := range cmds {
		c, err := decodeCall(cmd.Val(), nil)
		if err != nil || c.State.Terminal() {
			continue
		}
		calls = append(calls, c)
	}
	return calls, nil
}
