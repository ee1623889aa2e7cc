package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/call"
)

// Attempt is one try of an outbound call on one carrier, as the call-detail record keeps it.
type Attempt struct {
	Carrier string `json:"carrier"`
	Detail  string `json:"detail"` // "accepted by primary", "primary: http 503 → next", ...
}

const attemptMark = ":attempt:"

// AttemptEventID is the id of the event that records attempt n (from 1) of call callID. The
// store recognises such events (with no state) and keeps their carrier and detail for the
// call-detail record.
func AttemptEventID(callID string, n int) string {
	return callID + attemptMark + strconv.Itoa(n)
}

// attemptSummary is the line an attempt event adds to its call's attempts, or "".
func attemptSummary(e call.Event) string {
	if e.State != call.Unknown || !strings.HasPrefix(e.ID, e.CallID+attemptMark) {
		return ""
	}
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	return clean(e.Carrier) + "\t" + clean(e.Detail)
}

func parseAttempts(s string) []Attempt {
	var out []Attempt
	for line := range strings.Lines(s) {
		c, d, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		out = append(out, Attempt{Carrier: c, Detail: d})
	}
	return out
}

// CallAttempts returns the attempts recorded on a live or recent call, in order (none for an
// inbound call); ErrNotFound when the call is not known.
func (r *Redis) CallAttempts(ctx context.Context, id string) ([]Attempt, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	v, err := r.rdb.HMGet(ctx, r.keys.call(id), "id", "attempts").Result()
	if err != nil {
		return nil, fmt.Errorf("store: read attempts of call %s: %w", id, err)
	}
	if s, _ := v[0].(string); s == "" {
		return nil, ErrNotFound
	}
	s, _ := v[1].(string)
	return parseAttempts(s), nil
}
