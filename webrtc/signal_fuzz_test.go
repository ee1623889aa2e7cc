package webrtc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzAgentOffer feeds untrusted offers, as a softphone sends them, to a Peer: it must never
// panic, and an answer it gives must offer PCMU and no codec we would have to transcode.
func FuzzAgentOffer(f *testing.F) {
	e, err := NewEngine(EngineOptions{LoopbackOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	offer := seedOffer(f, e)
	f.Add(offer)
	f.Add(strings.Replace(offer, "PCMU/8000", "opus/48000/2", 1))
	f.Add("v=0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, sdp string) {
		p, err := e.NewPeer(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		p.OnLocalCandidate(func(string) {}) // trickle, as sessions do: Answer does not wait
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		answer, err := p.Answer(ctx, sdp)
		if err != nil {
			return
		}
		if strings.Contains(answer, "m=audio") && !strings.Contains(answer, "PCMU/8000") {
			t.Fatalf("an audio answer without PCMU:\n%s", answer)
		}
		if strings.Contains(strings.ToLower(answer), "opus") {
			t.Fatalf("the answer offers a codec we do not speak:\n%s", answer)
		}
	})
}

// FuzzClientMessage: any text a softphone sends is read as a message or refused, never a
// panic; what is read survives a round trip.
func FuzzClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","token":"ann.00"}`, `{"type":"dial","to":"+15551234567"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}`,
		`{"type":"mute","on":true}`, `{"type":"dtmf","digits":"12#"}`, `[]`, `{"type":1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var m clientMessage
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		_ = validNumber(m.To) // must not panic on any input
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var again clientMessage
		if err := json.Unmarshal(b, &again); err != nil || again.Type != m.Type || again.To != m.To || again.Token != m.Token {
			t.Fatalf("round trip: %+v → %s → %+v (%v)", m, b, again, err)
		}
	})
}
