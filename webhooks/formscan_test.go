package webhooks

import (
	"net/url"
	"testing"
)

func TestAppendUnescapeMatchesQueryUnescape(t *testing.T) {
	tests := []string{
		"", "plain", "a+b", "%2B1555", "%2b1555", "caf%C3%A9", "100%25", "%", "%2", "%zz", "%2g",
		"Sun%2C+25+Mar+2018+09%3A53%3A19+%2B0000", "a%00b", "+++", "%%41",
	}
	for _, in := range tests {
		want, wantErr := url.QueryUnescape(in)
		got, ok := appendUnescape(nil, []byte(in))
		if ok != (wantErr == nil) {
			t.Errorf("appendUnescape(%q) ok = %v, QueryUnescape err = %v", in, ok, wantErr)
			continue
		}
		if ok && string(got) != want {
			t.Errorf("appendUnescape(%q) = %q, want %q", in, got, want)
		}
		if ok && string(got) != in && !needsUnescape([]byte(in)) {
			t.Errorf("needsUnescape(%q) = false, but decoding changes it", in)
		}
	}
}

func TestNextPair(t *testing.T) {
	tests := []struct {
		in               string
		key, value, rest string
	}{
		{"a=1&b=2", "a", "1", "b=2"},
		{"a=1", "a", "1", ""},
		{"a", "a", "", ""},
		{"=1&", "", "1", ""},
		{"&b", "", "", "b"},
		{"a==1&", "a", "=1", ""},
	}
	for _, tt := range tests {
		k, v, r := nextPair([]byte(tt.in))
		if string(k) != tt.key || string(v) != tt.value || string(r) != tt.rest {
			t.Errorf("nextPair(%q) = %q, %q, %q; want %q, %q, %q", tt.in, k, v, r, tt.key, tt.value, tt.rest)
		}
	}
}

func TestQueryValue(t *testing.T) {
	tests := []struct {
		query, key, value string
		found             bool
	}{
		{"foo=1&sb_call=CLabc&bar=2", "sb_call", "CLabc", true},
		{"sb_call=first&sb_call=second", "sb_call", "first", true},
		{"xsb_call=1&sb_callx=2", "sb_call", "", false},
		{"sb_call", "sb_call", "", true},
		{"", "sb_call", "", false},
	}
	for _, tt := range tests {
		v, found := queryValue([]byte(tt.query), tt.key)
		if string(v) != tt.value || found != tt.found {
			t.Errorf("queryValue(%q, %q) = %q, %v; want %q, %v", tt.query, tt.key, v, found, tt.value, tt.found)
		}
	}
}

func TestParseDigits(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"49", 49, true}, {"007", 7, true}, {"999999999999999999", 999999999999999999, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.5", 0, false}, {"9999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDigits([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseDigits(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIsCallID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"CL0123456789abcdef01234567", true},
		{"CL0123456789ABCDEF01234567", false},
		{"CL0123456789abcdef0123456", false},
		{"CL0123456789abcdef012345678", false},
		{"CA0123456789abcdef01234567", false},
		{"cl0123456789abcdef01234567", false},
		{"CL0123456789abcdef0123456g", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isCallID(tt.in); got != tt.want {
			t.Errorf("isCallID(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if got := isCallID([]byte(tt.in)); got != tt.want {
			t.Errorf("isCallID([]byte(%q)) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
