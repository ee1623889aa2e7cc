package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

//go:embed apply.lua
var applySource string

// applyStride is how many arguments each event takes in the apply script.
const applyStride = 17

// newApplyScript puts the store's fixed values in front of the apply script as constants,
// so that they are not sent, and parsed, with every event.
func newApplyScript(o Options, k keys) *redis.Script {
	return redis.NewScript(fmt.Sprintf(
		"local LOG_LEN, CDR_LEN, LIVE_TTL, DONE_TTL, TERMINAL_RANK, ANSWERED_RANK, STRIDE, CHANNEL = %d, %d, %d, %d, %d, %d, %d, %q\n",
		o.HistoryLimit, o.CDRLimit, o.MaxCallAge.Milliseconds(), o.Retention.Milliseconds(),
		call.Completed.Rank(), call.InProgress.Rank(), applyStride, k.channel()) + applySource)
}

var (
	// park keeps an event for a carrier call id we cannot resolve yet, unless the index
	// appeared in the meantime, in which case it answers with our call id.
	parkScript = redis.NewScript(`
local id = redis.call('GET', KEYS[1])
if id then return id end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return false`)

	// link records which call a carrier call id belongs to and hands back the events that
	// were parked for it. Both keys share a hash tag, so no event can be parked after the
	// index exists and then be missed.
	linkScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('LRANGE', KEYS[2], 0, -1)`)
)

// Applied says what storing an event did. When Apply returns it without error, the event is
// durable in Redis: that is the moment a carrier may be acknowledged.
type Applied struct {
	CallID  string
	State   call.State // the call's state after the event
	Outcome call.Outcome
	// Parked is true when the event names a carrier call id we do not know yet: it is kept
	// and applied once Link tells us which call it belongs to.
	Parked bool
	// Orphan is true when the event came from an attempt we abandoned: a new one (Outcome
	// Orphaned) or a duplicate of one, whose first delivery may have been answered an error
	// before the orphan's hang-up was stored.
	Orphan bool
}

// NewCallID returns a fresh call id for a call we place.
func NewCallID() string {
	var b [12]byte
	rand.Read(b[:])
	return "CL" + hex.EncodeToString(b[:])
}

// InboundCallID derives our id for an inbound call from the carrier's id, so every instance
// and every callback of that call agree on it without a lookup.
func InboundCallID(carrier, carrierCallID string) string {
	h := sha256.Sum256([]byte(carrier + "\x00" + carrierCallID))
	return "CL" + hex.EncodeToString(h[:12])
}

// Apply stores one event. An event that carries our call id, or belongs to an inbound call,
// goes to its call at once; one that only carries a carrier call id is resolved through the
// index, and parked if the index does not know it yet. A duplicate is recognised by its
// event id and changes nothing.
func (r *Redis) Apply(ctx context.Context, e call.Event) (Applied, error) {
	if e.ID == "" {
		return Applied{}, errors.New("store: event without id")
	}
	if e.CallID == "" {
		switch {
		case e.CarrierCallID == "":
			return Applied{}, errors.New("store: event names no call")
		case e.Direction == call.Inbound:
			e.CallID = InboundCallID(e.Carrier, e.CarrierCallID)
		default:
			id, err := r.resolveOrPark(ctx, e)
			if err != nil || id == "" {
				return Applied{Parked: err == nil}, err
			}
			e.CallID = id
		}
	}
	return r.apply(ctx, e, time.Now())
}

func (r *Redis) resolveOrPark(ctx context.Context, e call.Event) (string, error) {
	raw, err := json.Marshal(parkedEvent(e))
	if err != nil {
		return "", err
	}
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	keys := []string{r.keys.carrierIndex(e.CarrierCallID), r.keys.pending(e.CarrierCallID)}
	if r.replicas.want == 0 {
		id, err := parkScript.Run(ctx, r.rdb, keys, raw, r.opts.MaxCallAge.Milliseconds()).Text()
		if errors.Is(err, redis.Nil) {
			return "", nil
		}
		return id, err
	}
	// A parked event is acknowledged too, so it waits for its replicas like any other. The
	// script goes whole (EVAL): in a pipeline a missing script cannot be retried, and parking
	// is rare.
	pipe := r.rdb.Pipeline()
	park := parkScript.Eval(ctx, pipe, keys, raw, r.opts.MaxCallAge.Milliseconds())
	wait := r.replicas.waitFor(ctx, pipe)
	_, _ = pipe.Exec(ctx) // park and wait carry their own errors, read below
	id, err := park.Text()
	if errors.Is(err, redis.Nil) {
		return "", r.replicas.check(wait)
	}
	return id, err
}

func (r *Redis) apply(ctx context.Context, e call.Event, now time.Time) (Applied, error) {
	if _, ok := ctx.Deadline(); !ok {
		// The batch's own round trip is bounded (opTimeout); a caller that set no deadline
		// gets OpTimeout for its wait. One that set one (every webhook) costs no second timer.
		var cancel context.CancelFunc
		ctx, cancel = r.opCtx(ctx)
		defer cancel()
	}
	res, err := r.batch.run(ctx, r.keys.call(e.CallID), r.keys.callLog(e.CallID), applyArgs(e, now))
	if err == nil && len(res) < 5 {
		err = fmt.Errorf("apply script answered %d values", len(res))
	}
	if err != nil {
		return Applied{}, fmt.Errorf("store: apply event %s to call %s: %w", e.ID, e.CallID, err)
	}
	a := Applied{CallID: e.CallID, Outcome: call.Outcome(res[0].(int64))}
	if a.Outcome == call.Refused {
		return a, fmt.Errorf("store: event %s of carrier %s for call %s: %w", e.ID, e.Carrier, e.CallID, ErrNotOwner)
	}
	a.State, _ = call.ParseState(res[1].(string))
	a.Orphan = a.Outcome == call.Orphaned || res[4].(int64) == 1
	created, ended := res[2].(int64) == 1, res[3].(int64) != 0
	if r.cluster && (created || ended) {
		// On Cluster the active-call index and the call-detail records live outside the
		// call's hash slot, so they are written after the script. The index is only a hint:
		// listing active calls checks each call's real state.
		if err := r.afterTransition(ctx, e.CallID, created, ended, res, now); err != nil {
			return a, err
		}
	}
	return a, nil
}

// applyArgs is an event's arguments to the apply script (see apply.lua).
func applyArgs(e call.Event, now time.Time) []any {
	var at string
	if !e.At.IsZero() {
		at = strconv.FormatInt(e.At.UnixMilli(), 10)
	}
	state := ""
	if e.State != call.Unknown {
		state = e.State.String()
	}
	direction := ""
	if e.Direction != call.UnknownDirection {
		direction = e.Direction.String()
	}
	unanswered := ""
	if e.Unanswered != call.Unknown {
		unanswered = e.Unanswered.String()
	}
	attempt := ""
	if e.Attempt > 0 {
		attempt = strconv.Itoa(e.Attempt)
	}
	return []any{
		e.ID, state, e.State.Rank(), at, now.UnixMilli(), e.CallID,
		e.Carrier, e.CarrierCallID, direction, e.From, e.To, e.Agent, e.Detail,
		attemptSummary(e), e.Source.String(), unanswered, attempt}
}

func (r *Redis) afterTransition(ctx context.Context, id string, created, ended bool, res []any, now time.Time) error {
	var wrap *redis.SliceCmd
	if ended {
		// A wrap-up saved while the call was live is in its hash (a slot of its own here).
		wrap = r.rdb.HMGet(ctx, r.keys.call(id), append(slices.Clip(wrapUpFields), "agents")...)
		if err := wrap.Err(); err != nil {
			return fmt.Errorf("store: index call %s: %w", id, err)
		}
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if created && !ended {
			p.ZAdd(ctx, r.keys.active(), redis.Z{Score: float64(now.UnixMilli()), Member: id})
		}
		if ended {
			createdAt, _ := strconv.ParseInt(res[11].(string), 10, 64)
			values := []any{
				"id", id, "state", res[1], "from", res[5], "to", res[6], "direction", res[7],
				"carrier", res[8], "carrier_call_id", res[9], "agent", res[10],
				"created_at", createdAt, "ended_at", now.UnixMilli(), "attempts", res[12],
			}
			if len(res) >= 15 { // a corrected ending: its original end, and what it replaces
				values[19] = res[13]
				values = append(values, "corrects", res[14])
			}
			p.ZRem(ctx, r.keys.active(), id)
			w := wrap.Val()
			if len(w) == len(wrapUpFields)+1 {
				agents, _ := w[len(wrapUpFields)].(string)
				values = append(values, "agents", agents)
			}
			if len(w) > len(wrapUpFields) && w[1] != nil {
				// Saved while the call was live: the record carries it (see wrapup.go).
				for i, f := range wrapUpFields {
					s, _ := w[i].(string)
					values = append(values, f, s)
				}
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.cdr(), MaxLen: r.opts.CDRLimit, Approx: true, Values: values})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: index call %s: %w", id, err)
	}
	return nil
}

// Link records that carrierCallID on carrier is our call callID (the carrier told us its id
// in the answer to our request, or an inbound call's webhook arrived) and applies any events
// that were parked because they arrived first.
//
// Only a carrier with a claim on the call may link it (ErrNotOwner), and a call already
// linked to a carrier call id is not re-pointed at another one (ErrNotOwner too): a webhook
// may confirm the link, never move it. LinkAttempt is the placer's version.
func (r *Redis) Link(ctx context.Context, callID, carrier, carrierCallID string) error {
	return r.LinkAttempt(ctx, callID, carrier, 0, carrierCallID)
}

// LinkAttempt is Link for attempt n (from 1) of an outbound call, which carrier accepted: it
// may point the record at that attempt's carrier call id, whatever an early callback put
// there, but only while the attempt is the one carrier was given and not abandoned.
func (r *Redis) LinkAttempt(ctx context.Context, callID, carrier string, n int, carrierCallID string) error {
	opCtx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.linkCall(opCtx, callID, carrier, n, carrierCallID); err != nil {
		return fmt.Errorf("store: link %s/%s to %s: %w", carrier, carrierCallID, callID, err)
	}
	pendingKey := r.keys.pending(carrierCallID)
	waiting, err := linkScript.Run(opCtx, r.rdb,
		[]string{r.keys.carrierIndex(carrierCallID), pendingKey},
		callID, r.opts.MaxCallAge.Milliseconds()).StringSlice()
	if err != nil {
		return fmt.Errorf("store: link %s/%s to %s: %w", carrier, carrierCallID, callID, err)
	}
	for _, raw := range waiting {
		var p parked
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return fmt.Errorf("store: parked event for %s/%s: %w", carrier, carrierCallID, err)
		}
		e := p.event()
		e.CallID = callID
		if _, err := r.apply(ctx, e, time.UnixMilli(p.ReceivedAt)); errors.Is(err, ErrNotOwner) {
			// Another carrier's event that named this carrier call id: refused, not kept.
			continue
		} else if err != nil {
			return err
		}
	}
	if len(waiting) > 0 {
		// Only now that every parked event is applied (idempotently) may they go.
		return r.rdb.Del(opCtx, pendingKey).Err()
	}
	return nil
}

// parked is an event as kept while it waits for its call to be known.
type parked struct {
	ID            string `json:"id"`
	Carrier       string `json:"c"`
	CarrierCallID string `json:"cc"`
	State         string `json:"s,omitempty"`
	Unanswered    string `json:"u,omitempty"`
	Direction     string `json:"dir,omitempty"`
	From          string `json:"f,omitempty"`
	To            string `json:"t,omitempty"`
	At            int64  `json:"at,omitempty"`
	Detail        string `json:"d,omitempty"`
	Source        string `json:"src,omitempty"`
	ReceivedAt    int64  `json:"r"`
}

func parkedEvent(e call.Event) parked {
	p := parked{ID: e.ID, Carrier: e.Carrier, CarrierCallID: e.CarrierCallID, From: e.From, To: e.To,
		Detail: e.Detail, Source: e.Source.String(), ReceivedAt: time.Now().UnixMilli()}
	if e.State != call.Unknown {
		p.State = e.State.String()
	}
	if e.Unanswered != call.Unknown {
		p.Unanswered = e.Unanswered.String()
	}
	if e.Direction != call.UnknownDirection {
		p.Direction = e.Direction.String()
	}
	if !e.At.IsZero() {
		p.At = e.At.UnixMilli()
	}
	return p
}

func (p parked) event() call.Event {
	e := call.Event{ID: p.ID, Carrier: p.Carrier, CarrierCallID: p.CarrierCallID, From: p.From, To: p.To,
		Detail: p.Detail, Direction: call.ParseDirection(p.Direction)}
	e.State, _ = call.ParseState(p.State)
	e.Unanswered, _ = call.ParseState(p.Unanswered)
	e.Source, _ = call.ParseSource(p.Source)
	if p.At != 0 {
		e.At = time.UnixMilli(p.At).UTC()
	}
	return e
}

var callFields = []string{"id", "state", "direction", "from", "to", "carrier", "carrier_call_id",
	"agent", "created_at", "updated_at", "notes", "disposition", "wrapped_up_at", "wrapped_up_by", "agents"}

// Call reads one call with its history.
func (r *Redis) Call(ctx context.Context, id string) (call.Call, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	var fields *redis.SliceCmd
	var log *redis.XMessageSliceCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, r.keys.call(id), callFields...)
		log = p.XRange(ctx, r.keys.callLog(id), "-", "+")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return call.Call{}, fmt.Errorf("store: read call %s: %w", id, err)
	}
	return decodeCall(fields.Val(), log.Val())
}

func decodeCall(f []any, log []redis.XMessage) (call.Call, error) {
	str := func(i int) string { s, _ := f[i].(string); return s }
	if str(0) == "" {
		return call.Call{}, ErrNotFound
	}
	c := call.Call{ID: str(0), From: str(3), To: str(4), Carrier: str(5), CarrierCallID: str(6), Agent: str(7),
		CreatedAt: unixMilli(str(8)), UpdatedAt: unixMilli(str(9)), Direction: call.ParseDirection(str(2)),
		History: make([]call.Entry, 0, len(log))}
	c.State, _ = call.ParseState(str(1))
	c.WrapUp = decodeWrapUp(func(k string) string { return str(10 + slices.Index(wrapUpFields, k)) })
	c.Agents = splitAgents(str(14))
	for _, m := range log {
		v := func(k string) string { s, _ := m.Values[k].(string); return s }
		h := call.Entry{EventID: v("id"), Carrier: v("c"), At: unixMilli(v("at")), ReceivedAt: unixMilli(v("r")),
			Changed: v("ch") == "1", Detail: v("d")}
		h.State, _ = call.ParseState(v("s"))
		h.Source, _ = call.ParseSource(v("src"))
		c.History = append(c.History, h)
	}
	return c, nil
}

// splitAgents reads a record's agents field: one agent id a line.
func splitAgents(s string) []string {
	var out []string
	for a := range strings.Lines(s) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func unixMilli(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s == "" {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// CallByCarrierID finds our call for a carrier's call id. carrier may be empty; when it is
// given, an inbound call is found by its derived id even before anything indexed it.
func (r *Redis) CallByCarrierID(ctx context.Context, carrierCallID, carrier string) (call.Call, error) {
	opCtx, cancel := r.opCtx(ctx)
	id, err := r.rdb.Get(opCtx, r.keys.carrierIndex(carrierCallID)).Result()
	cancel()
	switch {
	case errors.Is(err, redis.Nil) && carrier == "":
		return call.Call{}, ErrNotFound
	case errors.Is(err, redis.Nil):
		id = InboundCallID(carrier, carrierCallID)
	case err != nil:
		return call.Call{}, fmt.Errorf("store: look up %s/%s: %w", carrier, carrierCallID, err)
	}
	return r.Call(ctx, id)
}

// ActiveCalls lists calls that have not ended, oldest first, at most limit of them.
func (r *Redis) ActiveCalls(ctx context.Context, limit int) ([]call.Call, error) {
	opCtx, cancel := r.opCtx(ctx)
	ids, err := r.rdb.ZRange(opCtx, r.keys.active(), 0, int64(limit)-1).Result()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("store: list active calls: %w", err)
	}
	calls := make([]call.Call, 0, len(ids))
	for _, id := range ids {
		c, err := r.Call(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && c.State.Terminal()):
			// A stale hint (the call expired, or its end was stored but the index not yet
			// updated): repair it.
			r.rdb.ZRem(ctx, r.keys.active(), id)
		case err != nil:
			return nil, err
		default:
			calls = append(calls, c)
		}
	}
	return calls, nil
}

// ActiveCount is how many calls the active-call index holds: a cheap figure for charts,
// which may count a call whose end is stored but not yet unindexed (ActiveCalls checks each).
func (r *Redis) ActiveCount(ctx context.Context) (int64, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	n, err := r.rdb.ZCard(ctx, r.keys.active()).Result()
	if err != nil {
		return 0, fmt.Errorf("store: count active calls: %w", err)
	}
	return n, nil
}
