package webhooks

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"slices"
	"strings"
	"sync"
)

// twilioSigLen is the length of base64(HMAC-SHA1): anything else cannot match, and
// checking it first keeps the comparison free of allocations.
const twilioSigLen = 28

// VerifyTwilio reports whether signature (the X-Twilio-Signature header) is Twilio's
// signature of a request to fullURL with this body, made with authToken.
//
// fullURL must be what the carrier requested: our configured public base URL followed by
// the request URI exactly as received, never rebuilt from Host or X-Forwarded-* headers and
// never decoded and re-encoded, or the signature will not match. body is the raw request
// body (application/x-www-form-urlencoded, or JSON when the URL carries bodySHA256).
//
// It follows Twilio's documented algorithm and its SDKs' tolerance:
//   - a #fragment (connection overrides such as #ct=1000&rt=1000) is not signed;
//   - userinfo is not signed;
//   - Twilio signs voice callbacks over HTTPS without the port and others with it, so the
//     URL is tried both with the port it has (or the scheme's default port when it has
//     none) and without any port, as twilio-go does;
//   - with a bodySHA256 query parameter the body must hash to it and only the URL is
//     signed; otherwise every form pair is appended, sorted by key then value. An exact
//     duplicate pair counts once, as in twilio-python; when the body has one, the string
//     with every pair is tried too, since Twilio does not document which it signs.
//
// An empty token or signature, or an unreadable body, is never valid.
func VerifyTwilio(authToken, fullURL string, body []byte, signature string) bool {
	if authToken == "" || len(signature) != twilioSigLen {
		return false
	}
	u := splitTwilioURL(fullURL)
	s := getTwilioScratch(authToken)
	defer putTwilioScratch(s)

	if want, ok := queryValue(u.query(), "bodySHA256"); ok {
		var wantSum [sha256.Size]byte
		if !decodeHex(wantSum[:], want) {
			return false
		}
		gotSum := sha256.Sum256(body)
		if subtle.ConstantTimeCompare(gotSum[:], wantSum[:]) != 1 {
			return false
		}
		s.unique, s.all, s.dup = s.unique[:0], s.all[:0], false
	} else if !s.formSuffix(body) {
		return false
	}

	ports, n := u.ports()
	for _, port := range ports[:n] {
		if s.matches(u, port, s.unique, signature) || s.dup && s.matches(u, port, s.all, signature) {
			return true
		}
	}
	return false
}

// SignTwilio computes what VerifyTwilio checks, for the URL exactly as given (fragment and
// userinfo dropped, port untouched): for our own tools, the carrier simulator and tests.
// It returns "" for an empty token or a body that is not a readable form.
func SignTwilio(authToken, fullURL string, body []byte) string {
	if authToken == "" {
		return ""
	}
	u := splitTwilioURL(fullURL)
	s := getTwilioScratch(authToken)
	defer putTwilioScratch(s)
	if _, ok := queryValue(u.query(), "bodySHA256"); ok {
		s.unique = s.unique[:0]
	} else if !s.formSuffix(body) {
		return ""
	}
	s.sign(u, u.port, s.unique)
	return string(s.enc[:])
}

// twilioURL is a callback URL cut where Twilio's signed form may differ from what we
// received. Plain string slicing, not url.Parse: this runs on every callback, and any
// parse-and-print round trip risks re-encoding the query, which breaks the signature.
type twilioURL struct {
	scheme      string // including "://"; empty for a URL without one
	host        string // without userinfo and port
	port        string // including ':', as received; empty when absent
	defaultPort string // ":443" or ":80" for schemes that have one
	rest        string // path and query, fragment removed
}

func splitTwilioURL(raw string) twilioURL {
	if i := indexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	i := schemeEnd(raw)
	if i < 0 {
		return twilioURL{rest: raw}
	}
	u := twilioURL{scheme: raw[:i+3]}
	switch scheme := raw[:i]; {
	case strings.EqualFold(scheme, "https"), strings.EqualFold(scheme, "wss"):
		u.defaultPort = ":443"
	case strings.EqualFold(scheme, "http"), strings.EqualFold(scheme, "ws"):
		u.defaultPort = ":80"
	}
	authority := raw[i+3:]
	for j := 0; j < len(authority); j++ {
		if c := authority[j]; c == '/' || c == '?' {
			authority, u.rest = authority[:j], authority[j:]
			break
		}
	}
	for j := len(authority) - 1; j >= 0; j-- {
		if authority[j] == '@' {
			authority = authority[j+1:]
			break
		}
	}
	u.host = authority
	// The port is after the last ':', unless that colon is inside an IPv6 literal.
	for j := len(authority) - 1; j >= 0 && authority[j] != ']'; j-- {
		if authority[j] == ':' {
			u.host, u.port = authority[:j], authority[j:]
			break
		}
	}
	return u
}

// schemeEnd returns the index of "://" after a valid RFC 3986 scheme, or -1.
func schemeEnd(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':' && len(s) >= i+3 && s[i+1] == '/' && s[i+2] == '/':
			return i
		default:
			return -1
		}
	}
	return -1
}

func (u twilioURL) query() string {
	if i := indexByte(u.rest, '?'); i >= 0 {
		return u.rest[i+1:]
	}
	return ""
}

// ports lists the port forms to try: the URL as received first, then the other form
// twilio-go tries (port removed, or the default port added).
func (u twilioURL) ports() (ports [2]string, n int) {
	switch {
	case u.port != "":
		return [2]string{u.port, ""}, 2
	case u.defaultPort != "":
		return [2]string{"", u.defaultPort}, 2
	}
	return ports, 1
}

// twilioScratch holds what one signature needs besides its inputs. It is pooled with its
// HMAC keyed: at thousands of callbacks a second, a fresh hmac.New and decode buffer per
// request is most of the garbage this path would make.
type twilioScratch struct {
	mac    hash.Hash
	token  string // the key mac was made with
	decode []byte // every decoded key and value, back to back
	pairs  []formPair
	unique []byte // sorted pairs, exact duplicates once (twilio-python)
	all    []byte // sorted pairs, every one; built only when dup
	dup    bool
	msg    []byte
	sum    [sha1.Size]byte
	enc    [twilioSigLen]byte
}

// formPair is one decoded pair in twilioScratch.decode: key [k0:k1], value [k1:v1].
type formPair struct{ k0, k1, v1 int }

var twilioScratchPool = sync.Pool{New: func() any { return new(twilioScratch) }}

func getTwilioScratch(authToken string) *twilioScratch {
	s := twilioScratchPool.Get().(*twilioScratch)
	if s.mac == nil || s.token != authToken {
		s.mac = hmac.New(sha1.New, []byte(authToken))
		s.token = authToken
	}
	return s
}

// maxPooledScratch bounds what a pooled scratch keeps: one oversized body must not pin
// its buffers for the life of the process.
const maxPooledScratch = 64 << 10

func putTwilioScratch(s *twilioScratch) {
	if cap(s.decode) > maxPooledScratch || cap(s.unique) > maxPooledScratch || cap(s.all) > maxPooledScratch ||
		cap(s.msg) > maxPooledScratch || cap(s.pairs) > maxPooledScratch/8 {
		s.decode, s.unique, s.all, s.msg, s.pairs = nil, nil, nil, nil, nil
	}
	twilioScratchPool.Put(s)
}

// formSuffix decodes body and builds the sorted key+value strings Twilio appends to the
// URL. It reports false for a malformed percent-escape.
func (s *twilioScratch) formSuffix(body []byte) bool {
	// Every key and value is decoded into s.decode and a pair is offsets into it: a
	// pointer-free pair sorts faster, and with this capacity s.decode never moves.
	dec := slices.Grow(s.decode[:0], len(body))
	s.pairs = s.pairs[:0]
	for len(body) > 0 {
		var k, v []byte
		k, v, body = nextPair(body)
		if len(k) == 0 && len(v) == 0 {
			continue
		}
		var ok bool
		p := formPair{k0: len(dec)}
		dec, ok = appendUnescape(dec, k)
		p.k1 = len(dec)
		if ok {
			dec, ok = appendUnescape(dec, v)
		}
		if !ok {
			return false
		}
		p.v1 = len(dec)
		s.pairs = append(s.pairs, p)
	}
	s.decode = dec
	slices.SortFunc(s.pairs, func(a, b formPair) int {
		if c := bytes.Compare(dec[a.k0:a.k1], dec[b.k0:b.k1]); c != 0 {
			return c
		}
		return bytes.Compare(dec[a.k1:a.v1], dec[b.k1:b.v1])
	})
	s.unique, s.all, s.dup = s.unique[:0], s.all[:0], false
	for i, p := range s.pairs {
		if i > 0 && bytes.Equal(dec[p.k0:p.v1], dec[s.pairs[i-1].k0:s.pairs[i-1].v1]) && p.k1-p.k0 == s.pairs[i-1].k1-s.pairs[i-1].k0 {
			s.dup = true
			continue
		}
		s.unique = append(s.unique, dec[p.k0:p.v1]...)
	}
	if s.dup {
		for _, p := range s.pairs {
			s.all = append(s.all, dec[p.k0:p.v1]...)
		}
	}
	return true
}

// sign leaves base64(HMAC-SHA1(url with port, suffix)) in s.enc.
func (s *twilioScratch) sign(u twilioURL, port string, suffix []byte) {
	s.msg = append(append(append(append(s.msg[:0], u.scheme...), u.host...), port...), u.rest...)
	s.mac.Reset()
	s.mac.Write(s.msg)
	s.mac.Write(suffix)
	base64.StdEncoding.Encode(s.enc[:], s.mac.Sum(s.sum[:0]))
}

func (s *twilioScratch) matches(u twilioURL, port string, suffix []byte, signature string) bool {
	s.sign(u, port, suffix)
	return subtle.ConstantTimeCompare(s.enc[:], []byte(signature)) == 1
}

// decodeHex fills dst from exactly 2*len(dst) hex digits of either case.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}
