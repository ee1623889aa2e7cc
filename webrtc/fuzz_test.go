package webrtc_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// seedOffer is a real offer from a simulated agent on e, the seed the offer fuzzers mutate.
func seedOffer(f *testing.F, e *webrtc.Engine) string {
	f.Helper()
	agent, err := agentsim.NewSimAgent(agentsim.SimAgentOptions{Engine: e})
	if err != nil {
		f.Fatal(err)
	}
	defer agent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer, err := agent.Offer(ctx)
	if err != nil {
		f.Fatal(err)
	}
	return offer
}

// Everything an agent's browser sends us is untrusted: its offer, its trickled candidates and
// its audio packets' sizes. None of them may panic the server.

func FuzzPeerAnswer(f *testing.F) {
	e, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	offer := seedOffer(f, e)
	f.Add(offer)
	f.Add("v=0\r\n")
	f.Add("")
	f.Add(string(bytes.Repeat([]byte("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"), 3)))
	f.Fuzz(func(t *testing.T, sdp string) {
		peer, err := e.NewPeer(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		peer.Answer(ctx, sdp) // an error is fine; a panic or a hang is not
	})
}

func FuzzPeerAddICECandidate(f *testing.F) {
	e, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	f.Add(`{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}`)
	f.Add(`{"candidate":""}`)
	f.Add(`{"candidate":"candidate:x"}`)
	f.Add(`null`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, candidate string) {
		peer, err := e.NewPeer(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		// Before the offer candidates are held, up to a bound, whatever they say.
		for range webrtc.MaxPendingCandidates + 2 {
			peer.AddICECandidate(candidate)
		}
		held := peer.PendingCandidates()
		if held > webrtc.MaxPendingCandidates {
			t.Fatalf("%d candidates held", held)
		}
	})
}

// Agent audio of any packet sizes reaches the carrier as whole 160-byte frames, in order.
func FuzzBridgeRechunk(f *testing.F) {
	e, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	peer, err := e.NewPeer(nil)
	if err != nil {
		f.Fatal(err)
	}
	defer peer.Close()
	f.Add([]byte{80, 240, 100, 220}, byte(1))
	f.Add([]byte{1, 159, 160, 161}, byte(7))
	f.Add([]byte{0, 255}, byte(0))
	f.Fuzz(func(t *testing.T, sizes []byte, seed byte) {
		leg := &fakeLeg{}
		b := webrtc.NewBridge("fuzz", leg, peer, webrtc.BridgeOptions{})
		defer b.End()
		var sent []byte
		for i, n := range sizes {
			p := make([]byte, int(n))
			for j := range p {
				p[j] = seed + byte(i) + byte(j)
			}
			b.FromAgent(p)
			sent = append(sent, p...)
		}
		var got []byte
		for _, fr := range leg.all() {
			if len(fr) != media.FrameSamples {
				t.Fatalf("frame of %d bytes", len(fr))
			}
			got = append(got, fr...)
		}
		whole := len(sent) / media.FrameSamples * media.FrameSamples
		if !bytes.Equal(got, sent[:whole]) {
			t.Fatal("the carrier got different audio")
		}
	})
}

// FuzzAgentOffer feeds untrusted offers, as a softphone sends them, to a Peer: it must never
// panic, and an answer it gives must offer PCMU and no codec we would have to transcode.
func FuzzAgentOffer(f *testing.F) {
	e, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true})
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
