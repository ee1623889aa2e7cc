package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A call's recording parts come back oldest first, updated in place, kept for the retention;
// the writing instance's URL is kept for fetching but never shown.
func TestRecordingParts(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	if parts, err := r.RecordingParts(ctx, id); err != nil || len(parts) != 0 {
		t.Fatalf("an unrecorded call: %v %v", parts, err)
	}
	t0 := time.UnixMilli(time.Now().UnixMilli())
	second := RecordingPart{File: "b.wav", Instance: "i2", URL: "http://i2:8080", Started: t0.Add(time.Minute), State: RecordingActive}
	first := RecordingPart{File: "a.wav", Instance: "i1", URL: "http://i1:8080", Started: t0, DurationMS: 60000, State: RecordingMoved,
		Paused: []RecordingSpan{{From: 10 * time.Second, To: 12500 * time.Millisecond}}}
	for _, p := range []RecordingPart{second, first} {
		if err := r.PutRecordingPart(ctx, id, p, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	second.State, second.DurationMS = RecordingDone, 30000
	if err := r.PutRecordingPart(ctx, id, second, time.Hour); err != nil {
		t.Fatal(err)
	}
	parts, err := r.RecordingParts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].File != "a.wav" || parts[1].File != "b.wav" || parts[1].State != RecordingDone || parts[0].State != RecordingMoved || parts[1].DurationMS != 30000 ||
		parts[0].URL != "http://i1:8080" || len(parts[0].Paused) != 1 || parts[0].Paused[0] != first.Paused[0] || !parts[0].Started.Equal(t0) {
		t.Fatalf("parts %+v", parts)
	}
	if ttl := r.rdb.PTTL(ctx, r.keys.recording(id)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("kept for %v, want the retention", ttl)
	}
	b, _ := json.Marshal(parts[0])
	if strings.Contains(string(b), "i1:8080") || !strings.Contains(string(b), `"paused":[{"from_ms":10000,"to_ms":12500}]`) {
		t.Fatalf("as the API shows it: %s", b)
	}
}
