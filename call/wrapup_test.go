package call

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDispositions(t *testing.T) {
	d, err := ParseDispositions(DefaultDispositions)
	if err != nil || len(d) != 6 || d[0] != "resolved" {
		t.Fatalf("default: %v %v", d, err)
	}
	if d, err := ParseDispositions(" sale , no sale,callback_2 "); err != nil || strings.Join(d, "|") != "sale|no sale|callback_2" {
		t.Fatalf("trimmed: %q %v", d, err)
	}
	for _, bad := range []string{"", "a,,b", "a,", "sale,Sale", strings.Repeat("x", MaxDisposition+1), "a,<b>", "a;b",
		strings.Repeat("a,", MaxDispositions) + "z"} {
		if _, err := ParseDispositions(bad); err == nil {
			t.Errorf("%.60q: accepted", bad)
		}
	}
}

func TestDispositionsCheck(t *testing.T) {
	d := Dispositions{"resolved", "spam"}
	ok := WrapUp{Notes: strings.Repeat("é", MaxNotes), Disposition: "spam"}
	if err := d.Check(ok); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]WrapUp{
		"not listed":     {Disposition: "sold"},
		"none":           {Notes: "x"},
		"notes too long": {Notes: strings.Repeat("a", MaxNotes+1), Disposition: "spam"},
		"case differs":   {Disposition: "Spam"},
	} {
		if err := d.Check(w); !errors.Is(err, ErrWrapUp) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEndedAt(t *testing.T) {
	t0 := time.Unix(1000, 0).UTC()
	c := Call{State: InProgress, History: []Entry{{State: InProgress, Changed: true, ReceivedAt: t0}}}
	if !c.EndedAt().IsZero() {
		t.Fatal("a live call has an end")
	}
	c.State = Completed
	c.History = append(c.History, Entry{State: Completed, Changed: true, ReceivedAt: t0.Add(time.Minute)},
		Entry{EventID: "wrapup", ReceivedAt: t0.Add(2 * time.Minute)})
	if got := c.EndedAt(); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ended at %v", got)
	}
}
