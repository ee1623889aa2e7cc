package sim

import (
	"maps"
	"testing"
)

func TestParseTwiMLStream(t *testing.T) {
	doc, err := parseTwiML([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Connect>` +
		`<Stream url="wss://sb.example/webhooks/tw1/media/CL0123"><Parameter name="sb_call" value="CL0123"/>` +
		`<Parameter name="agent" value="a&amp;b"/></Stream></Connect></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	spec := twilioStream(&doc.Children[0].Children[0])
	if spec.url != "wss://sb.example/webhooks/tw1/media/CL0123" || spec.kind != Twilio ||
		!maps.Equal(spec.params, map[string]string{"sb_call": "CL0123", "agent": "a&b"}) {
		t.Errorf("stream %+v", spec)
	}
	for _, bad := range []string{``, `<Response>`, `<Say>hi</Say>`, `not xml`} {
		if _, err := parseTwiML([]byte(bad)); err == nil {
			t.Errorf("parseTwiML(%q) succeeded", bad)
		}
	}
}

// FuzzParseTwiML feeds the parser what Switchboard (or anything at the voice URL) might
// answer: it must never panic, and what it accepts has a <Response> root.
func FuzzParseTwiML(f *testing.F) {
	f.Add(`<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m"><Parameter name="a" value="b"/></Stream></Connect></Response>`)
	f.Add(`<Response><Say>Goodbye</Say><Pause length="x"/><Start><Stream/></Start><Hangup/></Response>`)
	f.Add(`<Nope/>`)
	f.Fuzz(func(t *testing.T, s string) {
		doc, err := parseTwiML([]byte(s))
		if err != nil {
			return
		}
		if doc.XMLName.Local != "Response" {
			t.Fatalf("accepted a <%s> root", doc.XMLName.Local)
		}
		for i := range doc.Children {
			for j := range doc.Children[i].Children {
				twilioStream(&doc.Children[i].Children[j])
			}
		}
	})
}
