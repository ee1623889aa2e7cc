package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

// CDR is the compact record kept for every finished call.
type CDR struct {
	CallID        string     `json:"call_id"`
	State         call.State `json:"state"`
	Direction     string     `json:"direction"`
	From          string     `json:"from"`
	To            string     `json:"to"`
	Carrier       string     `json:"carrier"`
	CarrierCallID string     `json:"carrier_call_id"`
	Agent         string     `json:"agent"`
	// Agents are every agent that took or joined the call (Agent is the first).
	Agents    []string  `json:"agents,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	EndedAt   time.Time `json:"ended_at"`
	// RecordedAt is when the record was written (its stream id): the call's end, or for a
	// correction the moment it was corrected. Searches by time select on it.
	RecordedAt time.Time `json:"recorded_at"`
	// Attempts are the carriers tried for an outbound call, in order, with what each answered.
	Attempts []Attempt `json:"attempts,omitempty"`
	// Corrects, when set, marks a correction: the call's earlier record ended it in this
	// state, chosen because its answer had not arrived yet; this record's State replaces it.
	Corrects call.State `json:"corrects,omitzero"`
	// WrapUp is the agent's notes and disposition, the newest saved (see wrapup.go).
	call.WrapUp
	// Recorded says the call was recorded, for RecordingMS in all (its parts' durations;
	// recordings.go). Read from the recording's record when the record is read, so it is
	// known for as long as the recording is kept (SWITCHBOARD_RECORDING_RETENTION).
	Recorded    bool  `json:"recorded"`
	RecordingMS int64 `json:"recording_ms,omitempty"`
}

// foldRecordings fills in whether each record's call was recorded, and for how long: one
// pipelined round trip for the page (the recording ends after the call's record is written,
// so the record itself cannot carry it).
func (r *Redis) foldRecordings(ctx context.Context, page []CDR) error {
	if len(page) == 0 {
		return nil
	}
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	cmds := make([]*redis.MapStringStringCmd, len(page))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range page {
			cmds[i] = p.HGetAll(ctx, r.keys.recording(c.CallID))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: read recordings of call-detail records: %w", err)
	}
	for i, cmd := range cmds {
		for _, v := range cmd.Val() {
			var p RecordingPart
			if json.Unmarshal([]byte(v), &p) == nil {
				page[i].Recorded = true
				page[i].RecordingMS += p.DurationMS
			}
		}
	}
	return nil
}

// cdrPage is how many stream entries RecentCDRs reads at a time beyond the n it wants: the
// stream also holds wrap-up entries, which are not records of their own.
const cdrPage = 64

// RecentCDRs returns up to n of the newest call-detail records, newest first, each with the
// newest wrap-up saved for its call (wrapup.go).
func (r *Redis) RecentCDRs(ctx context.Context, n int64) ([]CDR, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	out := make([]CDR, 0, min(n, 1000))
	// A wrap-up saved after its call's end is an entry newer than the call's record: reading
	// newest first, it is usually met before the record it belongs to. On Redis Cluster, where
	// the record is written after the script that ended the call, a save in between can land
	// just before the record instead: wrap-ups met after their record count too.
	wraps := map[string]call.WrapUp{}
	recordOf := map[string][]int{} // the records in out of each call (a corrected ending has two)
	fold := func(i int, w call.WrapUp) {
		if w.WrappedUpAt.After(out[i].WrappedUpAt) {
			out[i].WrapUp = w
		}
	}
	end := "+"
	for int64(len(out)) < n {
		want := n - int64(len(out)) + cdrPage
		msgs, err := r.rdb.XRevRangeN(ctx, r.keys.cdr(), end, "-", want).Result()
		if err != nil {
			return nil, fmt.Errorf("store: read call-detail records: %w", err)
		}
		for _, m := range msgs {
			v := func(k string) string { s, _ := m.Values[k].(string); return s }
			id := v("id")
			if v("kind") == "wrapup" {
				w := decodeWrapUp(v)
				if old, ok := wraps[id]; !ok || w.WrappedUpAt.After(old.WrappedUpAt) {
					wraps[id] = w
				}
				for _, i := range recordOf[id] {
					fold(i, w)
				}
				continue
			}
			if int64(len(out)) == n {
				continue // only the wrap-ups of the rest of this page may still matter
			}
			out = append(out, decodeCDR(m))
			recordOf[id] = append(recordOf[id], len(out)-1)
			if w, ok := wraps[id]; ok {
				fold(len(out)-1, w)
			}
		}
		if int64(len(msgs)) < want {
			break // the stream's oldest entry was read
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	if err := r.foldRecordings(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func decodeCDR(m redis.XMessage) CDR {
	v := func(k string) string { s, _ := m.Values[k].(string); return s }
	c := CDR{CallID: v("id"), Direction: v("direction"), From: v("from"), To: v("to"), Carrier: v("carrier"),
		CarrierCallID: v("carrier_call_id"), Agent: v("agent"), CreatedAt: unixMilli(v("created_at")),
		EndedAt: unixMilli(v("ended_at")), Attempts: parseAttempts(v("attempts")), WrapUp: decodeWrapUp(v),
		Agents: splitAgents(v("agents"))}
	if ms, _, ok := strings.Cut(m.ID, "-"); ok {
		c.RecordedAt = unixMilli(ms)
	}
	c.State, _ = call.ParseState(v("state"))
	c.Corrects, _ = call.ParseState(v("corrects"))
	return c
}

// CDRQuery selects call-detail records. Zero fields select everything.
type CDRQuery struct {
	// From and To bound RecordedAt: From inclusive, To exclusive ([From, To)), to the
	// millisecond, so consecutive ranges neither miss nor repeat a record.
	From, To time.Time
	// Number is found anywhere in the caller's or the callee's number ("5551234" finds
	// "+15551234567").
	Number string
	Agent  string
	// Carrier matches the carrier that carried the call or any carrier attempted for it.
	Carrier string
	State   call.State
	// Limit stops after that many matching records; 0 is no limit.
	Limit int
	// Newest walks newest first; otherwise oldest first.
	Newest bool
	// Page is how many records one round trip reads (default 1000).
	Page int64
}

// Match reports whether c is selected by q's filters (not its time range, which the scan
// applies by stream id).
func (q CDRQuery) Match(c CDR) bool {
	switch {
	case q.Number != "" && !strings.Contains(c.From, q.Number) && !strings.Contains(c.To, q.Number):
		return false
	case q.Agent != "" && c.Agent != q.Agent && !slices.Contains(c.Agents, q.Agent):
		return false
	case q.State != call.Unknown && c.State != q.State:
		return false
	case q.Carrier != "" && c.Carrier != q.Carrier:
		for _, a := range c.Attempts {
			if a.Carrier == q.Carrier {
				return true
			}
		}
		return false
	}
	return true
}

// ScanCDRs calls fn for every call-detail record q selects, in order, each with the newest
// wrap-up saved for its call, reading q.Page stream entries per round trip: stream ids are
// millisecond times, so the time range is an id range and paging resumes after the last id
// read. What it holds is one page, and an index of the wrap-ups saved after their call's end
// that may belong to the range (a call id and an entry id each; see lateWrapUps), whatever
// the number of records. An error before the first record is returned before fn is ever
// called (a caller that streams can still answer with an error status); fn's error ends the
// scan and is returned.
func (r *Redis) ScanCDRs(ctx context.Context, q CDRQuery, fn func(CDR) error) error {
	if q.Page <= 0 {
		q.Page = 1000
	}
	if !q.To.IsZero() && !q.From.IsZero() && !q.To.After(q.From) {
		return nil
	}
	lo, hi := "-", "+"
	if !q.From.IsZero() {
		lo = strconv.FormatInt(q.From.UnixMilli(), 10) // ms-0: inclusive
	}
	if !q.To.IsZero() {
		// The last id of the millisecond before To: To itself is excluded.
		hi = strconv.FormatInt(q.To.UnixMilli()-1, 10) + "-18446744073709551615"
	}
	late, err := r.lateWrapUps(ctx, q)
	if err != nil {
		return err
	}
	sent := 0
	// A small limit (the console's list) starts with a page its size, doubling up to q.Page
	// while filters leave it short.
	count := q.Page
	if q.Limit > 0 && int64(q.Limit) < count {
		count = int64(q.Limit)
	}
	for {
		opCtx, cancel := r.opCtx(ctx)
		var msgs []redis.XMessage
		if q.Newest {
			msgs, err = r.rdb.XRevRangeN(opCtx, r.keys.cdr(), hi, lo, count).Result()
		} else {
			msgs, err = r.rdb.XRangeN(opCtx, r.keys.cdr(), lo, hi, count).Result()
		}
		cancel()
		if err != nil {
			return fmt.Errorf("store: read call-detail records: %w", err)
		}
		// Wrap-ups in the page first: walking newest first, a wrap-up saved after its
		// call's end is met before the record (or, on Cluster, a moment after it, in the same
		// page as a rule).
		for _, m := range msgs {
			noteWrapUp(late, m)
		}
		page := make([]CDR, 0, len(msgs))
		for _, m := range msgs {
			if kind, _ := m.Values["kind"].(string); kind == "wrapup" {
				continue // folded into its record
			}
			if c := decodeCDR(m); q.Match(c) {
				page = append(page, c)
				if q.Limit > 0 && sent+len(page) >= q.Limit {
					break
				}
			}
		}
		if err := r.foldLateWrapUps(ctx, page, late); err != nil {
			return err
		}
		if err := r.foldRecordings(ctx, page); err != nil {
			return err
		}
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
		}
		if sent += len(page); q.Limit > 0 && sent >= q.Limit || int64(len(msgs)) < count {
			return nil
		}
		count = min(2*count, q.Page)
		// Resume just past the last id read ("(" makes a bound exclusive, Redis 6.2+).
		last := msgs[len(msgs)-1].ID
		if q.Newest {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}

// lateWrap is where the newest wrap-up saved after a call's end is in the stream.
type lateWrap struct {
	entry string // its stream id
	at    time.Time
}

// lateWrapUps indexes the wrap-ups saved after their call ended that may belong to records in
// q's range and that the scan itself will not meet before those records: such an entry
// follows its record by at most the retention (the call's hash, which a save needs, lives that
// long after the end), or precedes it by a moment on Redis Cluster (saved between the end and
// the record's write). Walking newest first, the scan meets those inside the range before
// their records, so only the ones after To are read here (none when To is open: the
// console's list reads nothing extra); oldest first, the whole range and the retention after
// it are. Only entry ids are kept, so the index stays small even when every call in the range
// was wrapped up late.
func (r *Redis) lateWrapUps(ctx context.Context, q CDRQuery) (map[string]lateWrap, error) {
	late := map[string]lateWrap{}
	lo, hi := "-", "+"
	switch {
	case q.Newest && q.To.IsZero():
		return late, nil
	case q.Newest:
		lo = strconv.FormatInt(q.To.UnixMilli(), 10)
	case !q.From.IsZero():
		lo = strconv.FormatInt(q.From.Add(-time.Minute).UnixMilli(), 10)
	}
	if !q.To.IsZero() {
		hi = strconv.FormatInt(q.To.Add(r.opts.Retention+time.Minute).UnixMilli(), 10)
	}
	for {
		opCtx, cancel := r.opCtx(ctx)
		msgs, err := r.rdb.XRangeN(opCtx, r.keys.cdr(), lo, hi, q.Page).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("store: read call-detail records: %w", err)
		}
		for _, m := range msgs {
			noteWrapUp(late, m)
		}
		if int64(len(msgs)) < q.Page {
			return late, nil
		}
		lo = "(" + msgs[len(msgs)-1].ID
	}
}

// noteWrapUp adds m to late if it is a wrap-up newer than the one noted for its call.
func noteWrapUp(late map[string]lateWrap, m redis.XMessage) {
	v := func(k string) string { s, _ := m.Values[k].(string); return s }
	if v("kind") != "wrapup" {
		return
	}
	at := unixMilli(v("wrapped_up_at"))
	if old, ok := late[v("id")]; !ok || at.After(old.at) {
		late[v("id")] = lateWrap{entry: m.ID, at: at}
	}
}

// foldLateWrapUps gives each record of page the newest wrap-up saved after its call's end,
// when that is newer than the one it carries, reading those entries in one round trip.
func (r *Redis) foldLateWrapUps(ctx context.Context, page []CDR, late map[string]lateWrap) error {
	var want []int
	for i, c := range page {
		if w, ok := late[c.CallID]; ok && w.at.After(c.WrappedUpAt) {
			want = append(want, i)
		}
	}
	if len(want) == 0 {
		return nil
	}
	opCtx, cancel := r.opCtx(ctx)
	defer cancel()
	cmds := make([]*redis.XMessageSliceCmd, len(want))
	_, err := r.rdb.Pipelined(opCtx, func(p redis.Pipeliner) error {
		for k, i := range want {
			id := late[page[i].CallID].entry
			cmds[k] = p.XRangeN(opCtx, r.keys.cdr(), id, id, 1)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: read wrap-ups of call-detail records: %w", err)
	}
	for k, i := range want {
		if msgs := cmds[k].Val(); len(msgs) == 1 {
			v := func(f string) string { s, _ := msgs[0].Values[f].(string); return s }
			page[i].WrapUp = decodeWrapUp(v)
		} // trimmed from the stream meanwhile: the record keeps what it carries
	}
	return nil
}
