package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

// How a call's wrap-up (the agent's notes and disposition) reaches its call-detail record.
//
// The record of a call is written by the apply script the moment the call ends, and an agent
// wraps up after that. So:
//   - saved while the call is live, the wrap-up is in the call's hash when the call ends, and
//     the apply script copies it into the record it writes;
//   - saved after the end, it goes to the call's hash and, in the same script, a second entry
//     of the call-detail stream (kind=wrapup) naming the call, which RecentCDRs folds into
//     the call's record (the newest save wins).
//
// The second entry makes the wrap-up as durable as the record itself: it outlives the call's
// hash (SWITCHBOARD_RETENTION) just as the record does. Reading the hash back instead would
// lose every wrap-up a day after its call. The script decides which case holds atomically
// with the call's end, so neither case can miss a save. On Redis Cluster, where the stream
// lives in another hash slot, the entry is written right after the script.

// maxLateWrapUps bounds how often one call's wrap-up may be saved after the call ended: each
// such save adds an entry to the call-detail stream, which is bounded and shared by every
// call, so an agent re-saving in a loop must not push real records out of it.
const maxLateWrapUps = 20

// ErrWrapUpLimit: the call's wrap-up was saved after its end maxLateWrapUps times already.
var ErrWrapUpLimit = errors.New("store: this call's wrap-up was changed too many times")

var wrapUpScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'id', 'rank', 'wn')
if not cur[1] then return {0, 0} end
local ended = tonumber(cur[2] or '0') == tonumber(ARGV[7])
if ended and tonumber(cur[3] or '0') >= tonumber(ARGV[8]) then return {-1, 1} end
redis.call('HSET', KEYS[1], 'notes', ARGV[1], 'disposition', ARGV[2], 'wrapped_up_at', ARGV[3], 'wrapped_up_by', ARGV[4])
if ended then redis.call('HINCRBY', KEYS[1], 'wn', 1) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'id', 'wrapup:' .. ARGV[3], 's', '', 'c', '', 'at', ARGV[3],
  'r', ARGV[5], 'ch', 0, 'd', 'wrap-up saved by ' .. ARGV[4] .. ': ' .. ARGV[2], 'src', ARGV[6])
if ended and KEYS[3] then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[10], '*', 'kind', 'wrapup', 'id', cur[1], 'notes', ARGV[1],
    'disposition', ARGV[2], 'wrapped_up_at', ARGV[3], 'wrapped_up_by', ARGV[4])
end
return {1, ended and 1 or 0}`)

// SaveWrapUp stores w as call id's wrap-up (replacing an earlier one), adds an entry to the
// call's history, and carries it to the call's call-detail record (see above). w must be
// Valid; which dispositions are allowed, and who may save when, is the caller's to check.
// It returns the call as stored; ErrNotFound for a call that does not exist (or expired).
func (r *Redis) SaveWrapUp(ctx context.Context, id string, w call.WrapUp) (call.Call, error) {
	if err := w.Valid(); err != nil {
		return call.Call{}, err
	}
	if w.WrappedUpAt.IsZero() || w.WrappedUpBy == "" {
		return call.Call{}, fmt.Errorf("%w: saved without a time or an author", call.ErrWrapUp)
	}
	src := call.SourceSwitchboard
	if strings.HasPrefix(w.WrappedUpBy, "agent:") {
		src = call.SourceAgent
	}
	opCtx, cancel := r.opCtx(ctx)
	defer cancel()
	keys := []string{r.keys.call(id), r.keys.callLog(id)}
	if !r.cluster {
		keys = append(keys, r.keys.cdr())
	}
	at := strconv.FormatInt(w.WrappedUpAt.UnixMilli(), 10)
	res, err := wrapUpScript.Run(opCtx, r.rdb, keys, w.Notes, w.Disposition, at, w.WrappedUpBy,
		time.Now().UnixMilli(), src.String(), call.Completed.Rank(), maxLateWrapUps, r.opts.HistoryLimit, r.opts.CDRLimit).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("wrap-up script answered %d values", len(res))
	}
	if err != nil {
		return call.Call{}, fmt.Errorf("store: save wrap-up of call %s: %w", id, err)
	}
	switch res[0] {
	case 0:
		return call.Call{}, ErrNotFound
	case -1:
		return call.Call{}, ErrWrapUpLimit
	}
	if res[1] == 1 && r.cluster {
		err := r.rdb.XAdd(opCtx, &redis.XAddArgs{Stream: r.keys.cdr(), MaxLen: r.opts.CDRLimit, Approx: true,
			Values: []any{"kind", "wrapup", "id", id, "notes", w.Notes, "disposition", w.Disposition,
				"wrapped_up_at", at, "wrapped_up_by", w.WrappedUpBy}}).Err()
		if err != nil {
			return call.Call{}, fmt.Errorf("store: carry wrap-up of call %s to its record: %w", id, err)
		}
	}
	return r.Call(ctx, id)
}

// wrapUpFields are the call hash's wrap-up fields, as Call and the call-detail records read them.
var wrapUpFields = []string{"notes", "disposition", "wrapped_up_at", "wrapped_up_by"}

// decodeWrapUp reads the four wrapUpFields' values.
func decodeWrapUp(v func(string) string) call.WrapUp {
	return call.WrapUp{Notes: v("notes"), Disposition: v("disposition"), WrappedUpAt: unixMilli(v("wrapped_up_at")),
		WrappedUpBy: v("wrapped_up_by")}
}
