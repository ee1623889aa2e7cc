package call

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// WrapUp is what an agent records about a call once it is over: free notes and a disposition
// (how the call ended for the business: resolved, follow-up...). Its fields sit at the top of
// a call's JSON.
type WrapUp struct {
	Notes       string    `json:"notes,omitempty"`
	Disposition string    `json:"disposition,omitempty"`
	WrappedUpAt time.Time `json:"wrapped_up_at,omitzero"`
	// WrappedUpBy names who saved it: "agent:<id>" or "admin".
	WrappedUpBy string `json:"wrapped_up_by,omitempty"`
}

// Bounds of a wrap-up. Notes are counted in characters (runes), not bytes.
const (
	MaxNotes            = 2000
	MaxDisposition      = 40
	MaxDispositions     = 50
	DefaultDispositions = "resolved,follow-up,escalated,voicemail,wrong-number,spam"
)

// ErrWrapUp is wrapped by every error about a wrap-up's content.
var ErrWrapUp = errors.New("invalid wrap-up")

// Valid checks what any wrap-up must be, whatever the configured dispositions: a disposition
// of at most MaxDisposition characters, notes of at most MaxNotes, valid UTF-8.
func (w WrapUp) Valid() error {
	switch {
	case w.Disposition == "":
		return fmt.Errorf("%w: a disposition is required", ErrWrapUp)
	case !utf8.ValidString(w.Notes) || !utf8.ValidString(w.Disposition):
		return fmt.Errorf("%w: notes and disposition must be UTF-8 text", ErrWrapUp)
	case utf8.RuneCountInString(w.Disposition) > MaxDisposition:
		return fmt.Errorf("%w: a disposition has at most %d characters", ErrWrapUp, MaxDisposition)
	case utf8.RuneCountInString(w.Notes) > MaxNotes:
		return fmt.Errorf("%w: notes have at most %d characters (these have %d)", ErrWrapUp, MaxNotes,
			utf8.RuneCountInString(w.Notes))
	}
	return nil
}

// Dispositions is the list an agent chooses a call's disposition from
// (SWITCHBOARD_DISPOSITIONS), in the order the softphone shows it.
type Dispositions []string

// ParseDispositions reads a comma-separated list: each item trimmed, none empty, none
// repeated (case-insensitively), each at most MaxDisposition characters of letters, digits,
// '-', '_', '.' and spaces, at most MaxDispositions of them.
func ParseDispositions(s string) (Dispositions, error) {
	var out Dispositions
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return nil, fmt.Errorf("item %d is empty", i+1)
		case utf8.RuneCountInString(item) > MaxDisposition:
			return nil, fmt.Errorf("item %d (%.20q...) is longer than %d characters", i+1, item, MaxDisposition)
		case strings.IndexFunc(item, badDispositionRune) >= 0:
			return nil, fmt.Errorf("item %d (%q) may hold only letters, digits, spaces, dashes, underscores and dots", i+1, item)
		case slices.ContainsFunc(out, func(d string) bool { return strings.EqualFold(d, item) }):
			return nil, fmt.Errorf("%q is listed twice", item)
		}
		out = append(out, item)
	}
	if len(out) > MaxDispositions {
		return nil, fmt.Errorf("%d items; at most %d", len(out), MaxDispositions)
	}
	return out, nil
}

func badDispositionRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	case r == '-', r == '_', r == '.', r == ' ':
		return false
	}
	return true
}

// Check validates w against the list: Valid, and a disposition that is one of d.
func (d Dispositions) Check(w WrapUp) error {
	if err := w.Valid(); err != nil {
		return err
	}
	if !slices.Contains(d, w.Disposition) {
		return fmt.Errorf("%w: disposition %q is not one of %s", ErrWrapUp, clipText(w.Disposition, MaxDisposition),
			strings.Join(d, ", "))
	}
	return nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// EndedAt is when the call's record learnt it had ended (the history entry that moved it to
// its terminal state), or zero for a live call.
func (c Call) EndedAt() time.Time {
	if !c.State.Terminal() {
		return time.Time{}
	}
	for _, h := range slices.Backward(c.History) {
		if h.Changed && h.State.Terminal() {
			return h.ReceivedAt
		}
	}
	return c.UpdatedAt
}

// WrapUpGrace is how long after an agent's wrap-up time (SWITCHBOARD_WRAP_UP) the agent may
// still save or change its wrap-up of a call: long enough to finish a sentence, short enough
// that notes are written while the call is fresh. The admin has no such limit.
const WrapUpGrace = 2 * time.Minute

// WrapUpOpen reports whether the call's agent may still save its wrap-up at now: while the
// call is live, and until window after it ended.
func (c Call) WrapUpOpen(now time.Time, window time.Duration) bool {
	end := c.EndedAt()
	return end.IsZero() || now.Before(end.Add(window))
}
