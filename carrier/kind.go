package carrier

import "fmt"

// Kind is the API dialect a carrier speaks. The zero value is KindUnknown, which no
// configured carrier has.
type Kind int8

const (
	KindUnknown Kind = iota
	// Twilio is the Twilio-compatible REST API: Twilio itself and the providers that copy it.
	Twilio
	// Telnyx is Telnyx Call Control v2.
	Telnyx
)

var kindNames = [...]string{KindUnknown: "unknown", Twilio: "twilio", Telnyx: "telnyx"}

// Kinds lists every real kind, for admin forms and tests.
var Kinds = []Kind{Twilio, Telnyx}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return kindNames[KindUnknown]
	}
	return kindNames[k]
}

// ParseKind reads a kind by its configuration name ("twilio", "telnyx").
func ParseKind(name string) (Kind, error) {
	for _, k := range Kinds {
		if kindNames[k] == name {
			return k, nil
		}
	}
	return KindUnknown, fmt.Errorf("carrier: unknown kind %q (want twilio or telnyx)", name)
}

// MarshalText makes a Kind read as its name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind name. An empty name (or "unknown") is KindUnknown, which
// Normalize then reports as a missing kind with the field named, a clearer message than a
// decode error.
func (k *Kind) UnmarshalText(b []byte) error {
	if len(b) == 0 || string(b) == "unknown" {
		*k = KindUnknown
		return nil
	}
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
