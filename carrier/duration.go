package carrier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is a time.Duration that reads well in configuration JSON: it is written as a Go
// duration string ("10s", "1m30s") and read from such a string or from an integer number of
// milliseconds, which is what most admin tools and scripts send.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON accepts "250ms", "2s", 2000 (milliseconds) and null (leaves d unchanged, as
// encoding/json does for other types). Fractions of a millisecond and exponents are
// refused: a timeout is a whole number of milliseconds, and "1e3" is more likely a mistake.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a Go duration such as \"2s\" or \"500ms\"", s)
		}
		*d = Duration(v)
		return nil
	default:
		ms, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("duration %s: want a string such as \"2s\" or whole milliseconds", b)
		}
		if ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
			return fmt.Errorf("duration %d ms: out of range", ms)
		}
		*d = Duration(time.Duration(ms) * time.Millisecond)
		return nil
	}
}
