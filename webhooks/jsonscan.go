package webhooks

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// jsonScanner reads one JSON document in place. Media frames arrive 50 times a second per
// call, and nearly all are "media" frames with four interesting fields: reading those
// without encoding/json's reflection and string copies is what keeps the media path free
// of allocations. It validates everything it passes over, so a document it accepts is
// one encoding/json accepts; the rare frames with nested data we keep (start, stop,
// error) are cut out as raw values and handed to encoding/json.
type jsonScanner struct {
	data []byte
	pos  int
	err  error
}

// maxJSONDepth bounds nesting well below encoding/json's 10000: frames are two or three
// levels deep, and the scanner recurses.
const maxJSONDepth = 512

func (s *jsonScanner) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s at byte %d", ErrMalformed, what, s.pos)
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *jsonScanner) peek() byte {
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// end checks that nothing but whitespace follows the document.
func (s *jsonScanner) end() {
	if s.peek() != 0 || s.pos != len(s.data) {
		s.fail("data after the document")
	}
}

// object begins reading an object value. It reports false, having consumed it, for null,
// and false with s.err set for anything else.
func (s *jsonScanner) object(what string) bool {
	switch s.peek() {
	case '{':
		s.pos++
		return true
	case 'n':
		s.literal("null")
		return false
	}
	s.fail(what + " is not an object")
	return false
}

// member moves to the next member of the object being read and returns its (decoded)
// key, leaving the scanner at the value. It reports false after the closing brace or on
// error. n counts the members read so far, so it knows where commas belong.
func (s *jsonScanner) member(n *int) ([]byte, bool) {
	if s.err != nil {
		return nil, false
	}
	c := s.peek()
	if *n > 0 {
		switch c {
		case '}':
			s.pos++
			return nil, false
		case ',':
			s.pos++
			c = s.peek()
		default:
			s.fail("expected , or }")
			return nil, false
		}
	} else if c == '}' {
		s.pos++
		return nil, false
	}
	if c != '"' {
		s.fail("expected a key")
		return nil, false
	}
	key, ok := s.str("key")
	if !ok {
		return nil, false
	}
	if s.peek() != ':' {
		s.fail("expected :")
		return nil, false
	}
	s.pos++
	*n++
	return key, true
}

// str reads a string or null value, decoded. The result aliases the document unless the
// string had escapes or invalid UTF-8 to rewrite.
func (s *jsonScanner) str(what string) ([]byte, bool) {
	switch s.peek() {
	case '"':
		start := s.pos
		inner, plain, ok := s.rawString()
		if !ok {
			return nil, false
		}
		if plain {
			return inner, true
		}
		// Rare: let encoding/json apply its exact rules (\u escapes, surrogates, U+FFFD).
		var v string
		if err := json.Unmarshal(s.data[start:s.pos], &v); err != nil {
			s.fail(what + " is not a valid string")
			return nil, false
		}
		return []byte(v), true
	case 'n':
		s.literal("null")
		return nil, s.err == nil
	}
	s.fail(what + " is not a string")
	return nil, false
}

// rawString passes over the string at s.pos. plain reports that its inside is already
// its value: no escapes, valid UTF-8.
func (s *jsonScanner) rawString() (inner []byte, plain, ok bool) {
	d := s.data
	start := s.pos + 1
	escaped, ascii := false, true
	for i := start; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			inner = d[start:i]
			return inner, !escaped && (ascii || utf8.Valid(inner)), true
		case c == '\\':
			escaped = true
			i++
			if i >= len(d) {
				s.pos = i
				s.fail("unterminated string")
				return nil, false, false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for j := 1; j <= 4; j++ {
					if i+j >= len(d) {
						s.pos = i
						s.fail("unterminated string")
						return nil, false, false
					}
					if _, ok := unhex(d[i+j]); !ok {
						s.pos = i
						s.fail("bad \\u escape")
						return nil, false, false
					}
				}
				i += 4
			default:
				s.pos = i
				s.fail("bad escape")
				return nil, false, false
			}
		case c < 0x20:
			s.pos = i
			s.fail("control character in string")
			return nil, false, false
		case c >= 0x80:
			ascii = false
		}
	}
	s.pos = len(d)
	s.fail("unterminated string")
	return nil, false, false
}

// intValue reads a whole non-negative number, written as a number or, as both carriers
// do for chunk, timestamp and sequence numbers, as a string of digits. null and "" are 0.
func (s *jsonScanner) intValue(what string) (int64, bool) {
	var digits []byte
	switch c := s.peek(); {
	case c == '"' || c == 'n':
		b, ok := s.str(what)
		if !ok {
			return 0, false
		}
		if len(b) == 0 {
			return 0, true
		}
		digits = b
	case c == '-' || '0' <= c && c <= '9':
		start := s.pos
		s.number()
		if s.err != nil {
			return 0, false
		}
		digits = s.data[start:s.pos]
	default:
		s.fail(what + " is not a number")
		return 0, false
	}
	n, ok := parseDigits(digits)
	if !ok {
		s.fail(what + " is not a whole number")
	}
	return n, ok
}

// raw passes over any value and returns its bytes, for encoding/json.
func (s *jsonScanner) raw() []byte {
	s.peek()
	start := s.pos
	s.skip(1)
	if s.err != nil {
		return nil
	}
	return s.data[start:s.pos]
}

// skip passes over any value, validating it.
func (s *jsonScanner) skip(depth int) {
	if depth > maxJSONDepth {
		s.fail("nesting too deep")
		return
	}
	switch c := s.peek(); {
	case c == '{':
		s.pos++
		n := 0
		for {
			if _, ok := s.member(&n); !ok {
				return
			}
			if s.skip(depth + 1); s.err != nil {
				return
			}
		}
	case c == '[':
		s.pos++
		if s.peek() == ']' {
			s.pos++
			return
		}
		for {
			if s.skip(depth + 1); s.err != nil {
				return
			}
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return
			default:
				s.fail("expected , or ]")
				return
			}
		}
	case c == '"':
		s.rawString()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		s.number()
	case c == 0 && s.pos == len(s.data):
		s.fail("unexpected end")
	default:
		s.fail("unexpected character")
	}
}

func (s *jsonScanner) literal(lit string) {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		s.fail("bad literal")
		return
	}
	s.pos += len(lit)
}

// number passes over a number in RFC 8259's grammar.
func (s *jsonScanner) number() {
	d, i := s.data, s.pos
	digits := func() bool {
		start := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	if i < len(d) && d[i] == '0' {
		i++
	} else if !digits() {
		s.pos = i
		s.fail("bad number")
		return
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			s.pos = i
			s.fail("bad number")
			return
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			s.pos = i
			s.fail("bad number")
			return
		}
	}
	s.pos = i
}

// appendJSONString appends s as a JSON string, escaped as encoding/json would (invalid
// UTF-8 becomes U+FFFD) except that <, > and & are left alone: frames are not HTML.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript; encoding/json
		// escapes them, and so do we.
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}
