package webhooks

// The carriers' form bodies and query strings are scanned in place rather than through
// url.ParseQuery: the hot paths need a handful of fields out of ~25, a sorted pair list
// for the signature, and no map.

// nextPair splits the first '&'-separated pair off s, still encoded. A pair without '='
// has an empty value. Empty pairs ("a=1&&b=2") come back with empty key and value; callers
// skip them, as url.ParseQuery does.
func nextPair[T string | []byte](s T) (key, value, rest T) {
	seg := s
	if i := indexByte(s, '&'); i >= 0 {
		seg, rest = s[:i], s[i+1:]
	}
	if i := indexByte(seg, '='); i >= 0 {
		return seg[:i], seg[i+1:], rest
	}
	return seg, value, rest
}

// indexByte is strings.IndexByte for either type; the inputs are a few hundred bytes.
func indexByte[T string | []byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// needsUnescape reports whether s has anything application/x-www-form-urlencoded
// decoding would change.
func needsUnescape(s []byte) bool {
	for _, c := range s {
		if c == '%' || c == '+' {
			return true
		}
	}
	return false
}

// appendUnescape appends the form-decoded s to dst ('+' is a space, %XX a byte). It
// reports false on a truncated or non-hex escape, which url.QueryUnescape rejects too.
func appendUnescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			dst = append(dst, ' ')
		case '%':
			if i+2 >= len(s) {
				return dst, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// queryValue returns the raw (still encoded) value of the first key in query, which must
// match exactly. Our own parameters (sb_call, bodySHA256) are never encoded by carriers.
func queryValue[T string | []byte](query T, key string) (value T, found bool) {
	for len(query) > 0 {
		var k, v T
		k, v, query = nextPair(query)
		if string(k) == key {
			return v, true
		}
	}
	return value, false
}

// parseDigits reads a non-negative decimal of at most 18 digits, so it cannot overflow.
func parseDigits(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
