package webhooks

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// scanDocument passes over a whole document with the scanner.
func scanDocument(doc []byte) error {
	s := jsonScanner{data: doc}
	s.skip(1)
	s.end()
	return s.err
}

func TestJSONScannerAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"d"}`, `[]`, `[1]`, `"x"`, `0`, `-0`, `-0.5e+10`, `1E5`,
		`true`, `false`, `null`, `{"a":"\u00e9\n\"\\\/"}`, `{"a":"\ud83d\ude00"}`, "{\"a\":\"\xff\"}", `{"":""}`,
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `[1,]`, `[,1]`, `[1 2]`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":+1}`, `{"a":0x10}`, `{"a":NaN}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":truex}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}",
		`{"a":"unterminated}`, `{"a":1}x`, `{"a":1}{}`, `{'a':1}`, "\ufeff{}", `{"a":1}` + "\t\r\n ",
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
		strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50),
	}
	for _, doc := range docs {
		err := scanDocument([]byte(doc))
		if (err == nil) != json.Valid([]byte(doc)) {
			t.Errorf("scanner on %q: %v; json.Valid = %v", doc, err, json.Valid([]byte(doc)))
		}
	}
}

func TestJSONScannerDepth(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if err := scanDocument([]byte(deep)); err == nil {
		t.Error("scanner accepted nesting past maxJSONDepth")
	}
}

func TestJSONScannerStrings(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{`"plain"`, "plain"},
		{`"caf\u00e9"`, "café"},
		{`"a\/b"`, "a/b"},
		{`"x\ny"`, "x\ny"},
		{"\"\xff\"", "\ufffd"},
		{`"\ud800"`, "\ufffd"},
		{`null`, ""},
	}
	for _, tt := range tests {
		s := jsonScanner{data: []byte(tt.doc)}
		got, ok := s.str("test")
		if !ok || string(got) != tt.want {
			t.Errorf("str(%q) = %q, %v (%v); want %q", tt.doc, got, ok, s.err, tt.want)
		}
	}
	for _, doc := range []string{`1`, `{}`, `true`, `"open`} {
		s := jsonScanner{data: []byte(doc)}
		if _, ok := s.str("test"); ok {
			t.Errorf("str(%q) succeeded", doc)
		}
	}
}

func TestJSONScannerIntValue(t *testing.T) {
	tests := []struct {
		doc  string
		want int64
		ok   bool
	}{
		{`"42"`, 42, true}, {`42`, 42, true}, {`""`, 0, true}, {`null`, 0, true}, {`"007"`, 7, true},
		{`"4x"`, 0, false}, {`-1`, 0, false}, {`"-1"`, 0, false}, {`1.5`, 0, false}, {`1e3`, 0, false},
		{`true`, 0, false}, {`{}`, 0, false}, {`"99999999999999999999"`, 0, false},
	}
	for _, tt := range tests {
		s := jsonScanner{data: []byte(tt.doc)}
		got, ok := s.intValue("test")
		if got != tt.want || ok != tt.ok {
			t.Errorf("intValue(%q) = %d, %v; want %d, %v", tt.doc, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "MZ0123456789abcdef", `quote " backslash \ slash /`, "ctl \x00\x01\x1f\x7f", "\n\r\t\b\f",
		"café ☎", "bad \xff utf8 \xe2\x82", "line\u2028sep\u2029", "<&>",
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		wantS := strings.TrimSuffix(want.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != wantS {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, wantS)
		}
	}
}
