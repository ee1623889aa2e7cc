package webhooks

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// telnyxEnvelope is the call.initiated webhook of carrier-protocols.md §4.1.
const telnyxEnvelope = `{"data":{"record_type":"event","event_type":"call.initiated","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
  "occurred_at":"2018-02-02T22:25:27.521992Z",
  "payload":{"call_control_id":"d14dbcee-880b-11eb-8204-02420a0f7568","connection_id":"7267xxxxxxxxxxxxxx",
   "call_leg_id":"d14dbcee-880b-11eb-8204-02420a0f7568","call_session_id":"428c31b6-abf3-3bc1-b7f4-5013ef9657c1",
   "client_state":"aGF2ZSBhIG5pY2UgZGF5ID1d","from":"+12025550133","to":"+12025550131",
   "direction":"incoming","state":"parked"}},
 "meta":{"attempt":1,"delivered_to":"https://example.com/webhooks"}}`

// testKey derives a key from a fixed seed so failures reproduce.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func TestParseTelnyxPublicKey(t *testing.T) {
	pub, _ := testKey(1)
	padded := base64.StdEncoding.EncodeToString(pub)
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"padded", padded, ""},
		{"unpadded", strings.TrimRight(padded, "="), ""},
		{"surrounding space", " " + padded + "\n", ""},
		{"empty", "", "empty"},
		{"not base64", "not*base64!", "not base64"},
		{"too short", base64.StdEncoding.EncodeToString(pub[:31]), "has 31 bytes, want 32"},
		{"private key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 64)), "has 64 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTelnyxPublicKey(tt.in)
			if tt.wantErr == "" {
				if err != nil || !got.Equal(pub) {
					t.Fatalf("ParseTelnyxPublicKey(%q) = %x, %v; want %x", tt.in, got, err, pub)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseTelnyxPublicKey(%q) error = %v, want it to say %q", tt.in, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), tt.in) && tt.in != "" {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

func TestVerifyTelnyx(t *testing.T) {
	pub, priv := testKey(1)
	otherPub, _ := testKey(2)
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(telnyxEnvelope)
	sig := SignTelnyx(priv, ts, body)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[10] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		pub  ed25519.PublicKey
		ts   string
		sig  string
		body []byte
		want error
	}{
		{"good", pub, ts, sig, body, nil},
		{"good, 5m old", pub, at(-5 * time.Minute), SignTelnyx(priv, at(-5*time.Minute), body), body, nil},
		{"good, 5m ahead", pub, at(5 * time.Minute), SignTelnyx(priv, at(5*time.Minute), body), body, nil},
		{"empty body", pub, ts, SignTelnyx(priv, ts, nil), nil, nil},
		{"tampered body", pub, ts, sig, bytes.Replace(body, []byte("+12025550133"), []byte("+12025550134"), 1), ErrSignature},
		{"re-encoded body", pub, ts, sig, bytes.ReplaceAll(body, []byte("\n"), nil), ErrSignature},
		{"tampered timestamp", pub, at(time.Second), sig, body, ErrSignature},
		{"wrong key", otherPub, ts, sig, body, ErrSignature},
		{"flipped signature bit", pub, ts, flip(sig), body, ErrSignature},
		{"stale past", pub, at(-5*time.Minute - time.Second), SignTelnyx(priv, at(-5*time.Minute-time.Second), body), body, ErrStale},
		{"stale future", pub, at(5*time.Minute + time.Second), SignTelnyx(priv, at(5*time.Minute+time.Second), body), body, ErrStale},
		{"stale, years old", pub, "0", SignTelnyx(priv, "0", body), body, ErrStale},
		{"stale, far future", pub, "9223372036854775807", SignTelnyx(priv, "9223372036854775807", body), body, ErrStale},
		{"stale, negative", pub, "-9223372036854775808", SignTelnyx(priv, "-9223372036854775808", body), body, ErrStale},
		{"missing signature", pub, ts, "", body, ErrSignature},
		{"missing timestamp", pub, "", SignTelnyx(priv, "", body), body, ErrSignature},
		{"timestamp not a number", pub, "2018-02-02T22:25:27Z", SignTelnyx(priv, "2018-02-02T22:25:27Z", body), body, ErrSignature},
		{"timestamp overflows", pub, "99999999999999999999", SignTelnyx(priv, "99999999999999999999", body), body, ErrSignature},
		{"signature not base64", pub, ts, "%%%%", body, ErrSignature},
		{"signature truncated", pub, ts, sig[:len(sig)-4], body, ErrSignature},
		{"signature too long", pub, ts, sig + "AAAA", body, ErrSignature},
		{"signature huge", pub, ts, strings.Repeat("A", 1<<16), body, ErrSignature},
		{"signature unpadded", pub, ts, strings.TrimRight(sig, "="), body, ErrSignature},
		{"nil key", nil, ts, sig, body, ErrSignature},
		{"short key", pub[:31], ts, sig, body, ErrSignature},
		{"private key as public", ed25519.PublicKey(priv), ts, sig, body, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyTelnyx(tt.pub, tt.ts, tt.sig, tt.body, now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyTelnyx = %v, want %v", err, tt.want)
			}
			if err != nil && (errors.Is(err, ErrSignature) == errors.Is(err, ErrStale)) {
				t.Errorf("error %v is not exactly one of ErrSignature and ErrStale", err)
			}
		})
	}
}

func TestSignTelnyx(t *testing.T) {
	pub, priv := testKey(3)
	sig := SignTelnyx(priv, "1700000000", []byte("{}"))
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		t.Fatalf("SignTelnyx = %q (%v), want base64 of %d bytes", sig, err, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, []byte("1700000000|{}"), raw) {
		t.Fatal(`SignTelnyx did not sign "timestamp|body"`)
	}
	for _, bad := range []ed25519.PrivateKey{nil, priv[:32], append(priv, 0)} {
		if got := SignTelnyx(bad, "1", nil); got != "" {
			t.Errorf("SignTelnyx with a %d-byte key = %q, want empty", len(bad), got)
		}
	}
}

func BenchmarkVerifyTelnyx(b *testing.B) {
	pub, priv := testKey(1)
	now := time.Unix(1700000000, 0)
	body := []byte(telnyxEnvelope)
	sig := SignTelnyx(priv, "1700000000", body)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyTelnyx(pub, "1700000000", sig, body, now); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerifyTelnyx: no input panics (keys of any length, any signature or timestamp), and
// a fresh signature verifies at its own time while a tampered body does not.
func FuzzVerifyTelnyx(f *testing.F) {
	_, priv := testKey(1)
	f.Add([]byte{1}, int64(1700000000), "1700000000", []byte(telnyxEnvelope), SignTelnyx(priv, "1700000000", []byte(telnyxEnvelope)))
	f.Add([]byte{}, int64(0), "", []byte(nil), "")
	f.Add(bytes.Repeat([]byte{7}, 64), int64(-1), "-1", []byte("{}"), "%%%")
	f.Add(bytes.Repeat([]byte{9}, 32), int64(9223372036854775807), "9223372036854775807", []byte("x"), strings.Repeat("A", 88))
	f.Fuzz(func(t *testing.T, seed []byte, unix int64, rawTS string, body []byte, sig string) {
		now := time.Unix(unix, 0)
		// Whatever the bytes, as a key of whatever length.
		if err := VerifyTelnyx(ed25519.PublicKey(seed), rawTS, sig, body, now); err != nil && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrStale) {
			t.Fatalf("VerifyTelnyx returned %v, neither ErrSignature nor ErrStale", err)
		}
		seed32 := make([]byte, ed25519.SeedSize)
		copy(seed32, seed)
		priv := ed25519.NewKeyFromSeed(seed32)
		pub := priv.Public().(ed25519.PublicKey)
		if err := VerifyTelnyx(pub, rawTS, sig, body, now); err == nil && sig != SignTelnyx(priv, rawTS, body) {
			// Ed25519 signatures are deterministic; base64 could still differ in padding bits.
			raw, _ := base64.StdEncoding.DecodeString(sig)
			if !ed25519.Verify(pub, []byte(rawTS+"|"+string(body)), raw) {
				t.Fatalf("VerifyTelnyx accepted a signature ed25519.Verify rejects")
			}
		}
		ts := strconv.FormatInt(unix, 10)
		good := SignTelnyx(priv, ts, body)
		if err := VerifyTelnyx(pub, ts, good, body, now); err != nil {
			t.Fatalf("VerifyTelnyx rejected a fresh signature: %v", err)
		}
		if err := VerifyTelnyx(pub, ts, good, append(append([]byte{}, body...), 0), now); !errors.Is(err, ErrSignature) {
			t.Fatalf("tampered body: %v, want ErrSignature", err)
		}
	})
}
