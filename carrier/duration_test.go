package carrier

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"10s"`, 10 * time.Second, false},
		{`"1m30s"`, 90 * time.Second, false},
		{`"250ms"`, 250 * time.Millisecond, false},
		{`2000`, 2 * time.Second, false},
		{` 0 `, 0, false},
		{`-5`, -5 * time.Millisecond, false},
		{`"0"`, 0, false},
		{`"10"`, 0, true}, // a bare number in a string has no unit: refuse rather than guess
		{`"soon"`, 0, true},
		{`1.5`, 0, true},
		{`1e3`, 0, true},
		{`true`, 0, true},
		{`9223372036854775807`, 0, true},
		{`""`, 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err != nil) != tt.wantErr {
			t.Errorf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && d.Std() != tt.want {
			t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, d, tt.want)
		}
	}
}

func TestDurationNullKeepsValue(t *testing.T) {
	d := Duration(time.Second)
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || d.Std() != time.Second {
		t.Fatalf("null: %v, %v; want 1s unchanged", d, err)
	}
}

func TestDurationRoundTrip(t *testing.T) {
	for _, v := range []time.Duration{0, time.Millisecond, 1500 * time.Millisecond, 10 * time.Second, time.Hour} {
		b, err := json.Marshal(Duration(v))
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Std() != v {
			t.Errorf("%v -> %s -> %v, %v", v, b, back, err)
		}
	}
	if b, _ := json.Marshal(Duration(10 * time.Second)); string(b) != `"10s"` {
		t.Errorf("10s marshals as %s", b)
	}
}

func FuzzDurationUnmarshal(f *testing.F) {
	for _, s := range []string{`"10s"`, `2000`, `null`, `"-1h"`, `1e9`, `"`, `99999999999999999999`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Fatalf("%s -> %v -> %s -> %v, %v", in, d, b, back, err)
		}
	})
}
