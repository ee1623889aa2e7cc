package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// A call's recording is one part per instance that carried its audio while it was recorded
// (a call handed over to another instance goes on in a new file there). Each part is a field
// of the hash <ns>:call:{id}:recording, keyed by its file name, holding the part as JSON; the
// instance writing it updates it as it goes (a recording, paused spans) and when it stops.
// The hash lives as long as the files (the recording retention).

// RecordingSpan is a part of a recording, as offsets from its start.
type RecordingSpan struct {
	From time.Duration `json:"from_ms"`
	To   time.Duration `json:"to_ms"`
}

// MarshalJSON writes the offsets in milliseconds, as the API shows them.
func (s RecordingSpan) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		From int64 `json:"from_ms"`
		To   int64 `json:"to_ms"`
	}{s.From.Milliseconds(), s.To.Milliseconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *RecordingSpan) UnmarshalJSON(b []byte) error {
	var v struct {
		From int64 `json:"from_ms"`
		To   int64 `json:"to_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.From, s.To = time.Duration(v.From)*time.Millisecond, time.Duration(v.To)*time.Millisecond
	return nil
}

// RecordingPart is one file of a call's recording.
type RecordingPart struct {
	File     string `json:"file"`
	Instance string `json:"instance"`
	// URL is the public URL of the instance that wrote the file: another instance fetches
	// the file from it when the recordings directory is not shared.
	URL        string          `json:"-"`
	Started    time.Time       `json:"started"`
	DurationMS int64           `json:"duration_ms"`
	Paused     []RecordingSpan `json:"paused"`
	State      RecordingState  `json:"state"`
	// Error says why a failed part stopped.
	Error string `json:"error,omitempty"`
	// EndedPaused says a part that stopped (moved) was paused then: the instance going on
	// with the call goes on paused.
	EndedPaused bool `json:"ended_paused,omitempty"`
}

// RecordingState is where a part stands.
type RecordingState string

// The states of a part. A part still recording or paused whose instance died stays so: the
// instance that takes the call over reads it to go on (paused, if it was) in a part of its own.
const (
	RecordingActive RecordingState = "recording"
	RecordingPaused RecordingState = "paused"
	RecordingDone   RecordingState = "done"   // the call ended, or the agent stopped it
	RecordingMoved  RecordingState = "moved"  // the call's audio moved to another instance, which goes on
	RecordingFailed RecordingState = "failed" // the file could not be written; Error says why
)

// Live reports whether the part was being written (recording or paused) when last stored.
func (s RecordingState) Live() bool { return s == RecordingActive || s == RecordingPaused }

// storedPart is a part as the hash keeps it: with the instance's URL, which the API never shows.
type storedPart struct {
	RecordingPart
	URL string `json:"url"`
}

func (k keys) recording(callID string) string { return k.ns + ":call:{" + callID + "}:recording" }

// PutRecordingPart stores (or updates) a part of callID's recording, kept for keep.
func (r *Redis) PutRecordingPart(ctx context.Context, callID string, p RecordingPart, keep time.Duration) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if p.Paused == nil {
		p.Paused = []RecordingSpan{}
	}
	b, err := json.Marshal(storedPart{RecordingPart: p, URL: p.URL})
	if err != nil {
		return err
	}
	key := r.keys.recording(callID)
	pipe := r.rdb.TxPipeline()
	pipe.HSet(ctx, key, p.File, b)
	pipe.PExpire(ctx, key, keep)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store: save recording of %s: %w", callID, err)
	}
	return nil
}

// RecordingParts returns the parts of callID's recording, oldest first; none if it was not
// recorded (or its recording is past retention).
func (r *Redis) RecordingParts(ctx context.Context, callID string) ([]RecordingPart, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	m, err := r.rdb.HGetAll(ctx, r.keys.recording(callID)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read recording of %s: %w", callID, err)
	}
	parts := make([]RecordingPart, 0, len(m))
	for _, v := range m {
		var sp storedPart
		if err := json.Unmarshal([]byte(v), &sp); err != nil {
			continue // not ours to read: a part is written whole, never half
		}
		sp.RecordingPart.URL = sp.URL
		parts = append(parts, sp.RecordingPart)
	}
	slices.SortFunc(parts, func(a, b RecordingPart) int { return a.Started.Compare(b.Started) })
	return parts, nil
}
