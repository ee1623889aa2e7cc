package carrier

import (
	"encoding/json"
	"testing"
)

func TestKindNamesRoundTrip(t *testing.T) {
	for _, k := range Kinds {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	for _, bad := range []string{"", "unknown", "Twilio", "vonage"} {
		if _, err := ParseKind(bad); err == nil {
			t.Errorf("ParseKind(%q) succeeded", bad)
		}
	}
	if KindUnknown.String() != "unknown" || Kind(42).String() != "unknown" || Kind(-1).String() != "unknown" {
		t.Error("out-of-range kinds must print as unknown")
	}
}

func TestKindJSON(t *testing.T) {
	var v struct {
		Kind Kind `json:"kind"`
	}
	if err := json.Unmarshal([]byte(`{"kind":"telnyx"}`), &v); err != nil || v.Kind != Telnyx {
		t.Fatalf("decode telnyx: %v, %v", v.Kind, err)
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"kind":"telnyx"}` {
		t.Fatalf("encode: %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":""}`), &v); err != nil || v.Kind != KindUnknown {
		t.Fatalf("empty kind: %v, %v; want unknown, nil", v.Kind, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"plivo"}`), &v); err == nil {
		t.Fatal("decoding an unknown kind succeeded")
	}
}
