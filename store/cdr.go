package store

import (
	"context"
	"fmt"
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
	CreatedAt     time.Time  `json:"created_at"`
	EndedAt       time.Time  `json:"ended_at"`
	// RecordedAt is when the record was written (its stream id): the call's end, or for a
	// correction the moment it was corrected. Searches by time select on it.
	RecordedAt time.Time `json:"recorded_at"`
	// Attempts are the carriers tried for an outbound call, in order, with what each answered.
	Attempts []Attempt `json:"attempts,omitempty"`
	// Corrects, when set, marks a correction: the call's earlier record ended it in this
	// state, chosen because its answer had not arrived yet; this record's State replaces it.
	Corrects call.State `json:"corrects,omitzero"`
	// Disposition and Notes are the agent's wrap-up, when the record carries one.
	Disposition string `json:"disposition,omitempty"`
	Notes       string `json:"notes,omitempty"`
}

// RecentCDRs returns up to n of the newest call-detail records, newest first.
func (r *Redis) RecentCDRs(ctx context.Context, n int64) ([]CDR, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	msgs, err := r.rdb.XRevRangeN(ctx, r.keys.cdr(), "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read call-detail records: %w", err)
	}
	out := make([]CDR, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeCDR(m))
	}
	return out, nil
}

func decodeCDR(m redis.XMessage) CDR {
	v := func(k string) string { s, _ := m.Values[k].(string); return s }
	c := CDR{CallID: v("id"), Direction: v("direction"), From: v("from"), To: v("to"), Carrier: v("carrier"),
		CarrierCallID: v("carrier_call_id"), Agent: v("agent"), CreatedAt: unixMilli(v("created_at")),
		EndedAt: unixMilli(v("ended_at")), Attempts: parseAttempts(v("attempts")),
		Disposition: v("disposition"), Notes: v("notes")}
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
	case q.Agent != "" && c.Agent != q.Agent:
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

// ScanCDRs calls fn for every call-detail record q selects, in order, reading q.Page records
// per round trip: stream ids are millisecond times, so the time range is an id range and
// paging resumes after the last id read. Memory stays that of one page however many records
// match. An error reading the first page is returned before fn is ever called (a caller
// that streams can still answer with an error status); fn's error ends the scan and is
// returned.
func (r *Redis) ScanCDRs(ctx context.Context, q CDRQuery, fn func(CDR) error) error {
	if q.Page <= 0 {
		q.Page = 1000
	}
	lo, hi := "-", "+"
	if !q.From.IsZero() {
		lo = strconv.FormatInt(q.From.UnixMilli(), 10) // ms-0: inclusive
	}
	if !q.To.IsZero() {
		if !q.To.After(q.From) && !q.From.IsZero() {
			return nil
		}
		// The last id of the millisecond before To: To itself is excluded.
		hi = strconv.FormatInt(q.To.UnixMilli()-1, 10) + "-18446744073709551615"
	}
	sent := 0
	for {
		opCtx, cancel := r.opCtx(ctx)
		var msgs []redis.XMessage
		var err error
		if q.Newest {
			msgs, err = r.rdb.XRevRangeN(opCtx, r.keys.cdr(), hi, lo, q.Page).Result()
		} else {
			msgs, err = r.rdb.XRangeN(opCtx, r.keys.cdr(), lo, hi, q.Page).Result()
		}
		cancel()
		if err != nil {
			return fmt.Errorf("store: read call-detail records: %w", err)
		}
		for _, m := range msgs {
			c := decodeCDR(m)
			if !q.Match(c) {
				continue
			}
			if err := fn(c); err != nil {
				return err
			}
			if sent++; q.Limit > 0 && sent >= q.Limit {
				return nil
			}
		}
		if int64(len(msgs)) < q.Page {
			return nil
		}
		// Resume just past the last id read ("(" makes a bound exclusive, Redis 6.2+).
		last := msgs[len(msgs)-1].ID
		if q.Newest {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}
