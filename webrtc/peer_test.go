package webrtc_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// audioRecorder is a sink that keeps everything it is given.
type audioRecorder struct {
	mu   sync.Mutex
	data []byte
	n    int
}

func (r *audioRecorder) sink(ulaw []byte) {
	r.mu.Lock()
	r.data = append(r.data, ulaw...)
	r.n++
	r.mu.Unlock()
}

func (r *audioRecorder) frames() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *audioRecorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data...)
}

// digitRecorder is a DTMF sink that keeps every digit.
type digitRecorder struct {
	mu     sync.Mutex
	digits string
}

func (r *digitRecorder) sink(d string) {
	r.mu.Lock()
	r.digits += d
	r.mu.Unlock()
}

func (r *digitRecorder) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.digits
}

func TestPeerAnswerConnectsAndCarriesAudioBothWays(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{}, nil)

	var heard audioRecorder
	peer.SetAgentAudioSink(heard.sink)

	// Carrier side: 1 kHz at 20 ms pace, as carrier frames arrive.
	tone := media.NewTone(1000, 0.5)
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for agent.FramesReceived() < 40 || heard.frames() < 40 {
		<-ticker.C
		if err := peer.WriteAudio(tone.Frame()); err != nil {
			t.Fatal(err)
		}
	}
	if p := agent.DominantPower(1000); p < 0.05 {
		t.Errorf("agent hears 1 kHz at %.4f, want > 0.05", p)
	}
	if p := agent.DominantPower(440); p > 0.01 {
		t.Errorf("agent hears its own 440 Hz at %.4f, want < 0.01", p)
	}
	got := heard.bytes()
	if p := media.MiddlePower(got, 440); p < 0.05 {
		t.Errorf("peer hears the agent's 440 Hz at %.4f, want > 0.05", p)
	}
	if p := media.MiddlePower(got, 1000); p > 0.01 {
		t.Errorf("peer hears 1 kHz at %.4f, want < 0.01", p)
	}
}

// A browser offers many codecs (Chrome 156: opus, G722, PCMU, PCMA, CN, telephone-event at
// several rates); the answer must keep only PCMU and 8 kHz telephone-event, at the
// browser's payload types.
func TestPeerAnswerKeepsOnlyPCMUAndTelephoneEvent(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	m := &pion.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCodec(pion.RTPCodecParameters{
		RTPCodecCapability: pion.RTPCodecCapability{MimeType: webrtc.MimeTypeTelephoneEvent, ClockRate: 8000, SDPFmtpLine: "0-16"},
		PayloadType:        126,
	}, pion.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	browser, err := pion.NewAPI(pion.WithMediaEngine(m)).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer browser.GracefulClose()
	if _, err := browser.AddTransceiverFromKind(pion.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := browser.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer.SDP, "opus") {
		t.Fatalf("test offer has no opus:\n%s", offer.SDP)
	}

	peer, err := e.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := peer.Answer(ctx, offer.SDP)
	if err != nil {
		t.Fatal(err)
	}
	var formats []string
	for line := range strings.SplitSeq(answer, "\r\n") {
		if strings.HasPrefix(line, "m=audio ") {
			formats = strings.Fields(line)[3:]
		}
	}
	if !slices.Equal(formats, []string{"0", "126"}) {
		t.Errorf("answer formats %q, want [0 126]:\n%s", formats, answer)
	}
	if !strings.Contains(answer, "a=rtpmap:126 telephone-event/8000") || !strings.Contains(answer, "a=rtpmap:0 PCMU/8000") {
		t.Errorf("answer lacks PCMU or telephone-event rtpmap:\n%s", answer)
	}
	if !strings.Contains(answer, "a=candidate:") {
		t.Errorf("non-trickle answer carries no candidate:\n%s", answer)
	}
}

func TestPeerDTMFSinkOncePerKeyPress(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{}, nil)
	var digits digitRecorder
	peer.SetDTMFSink(digits.sink)
	for _, d := range []string{"7", "#", "7"} {
		if err := agent.SendDTMF(d); err != nil {
			t.Fatal(err)
		}
	}
	redistest.Eventually(t, 5*time.Second, "three digits", func() bool { return len(digits.get()) >= 3 })
	// Give any duplicate (the repeated end packets) time to show up: 10 more audio frames.
	sent := agent.FramesSent()
	redistest.Eventually(t, 5*time.Second, "10 more frames", func() bool { return agent.FramesSent() >= sent+10 })
	if got := digits.get(); got != "7#7" {
		t.Errorf("digits %q, want %q", got, "7#7")
	}
	if err := agent.SendDTMF("x"); !errors.Is(err, media.ErrBadDigit) {
		t.Errorf("SendDTMF(x) = %v, want media.ErrBadDigit", err)
	}
}

// Trickle ICE as the signalling WebSocket will do it: the agent's candidates arrive before
// its offer (and are held), ours go out through OnLocalCandidate.
func TestPeerTrickleICE(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, err := e.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	agent, err := agentsim.NewSimAgent(agentsim.SimAgentOptions{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()

	var (
		mu    sync.Mutex
		local []string
		done  bool
	)
	peer.OnLocalCandidate(func(c string) {
		mu.Lock()
		defer mu.Unlock()
		if c == "" {
			done = true
			return
		}
		local = append(local, c)
	})

	offer, err := agent.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bare []string
	trickled := 0
	for line := range strings.SplitSeq(offer, "\r\n") {
		if c, ok := strings.CutPrefix(line, "a="); ok && strings.HasPrefix(c, "candidate:") {
			if err := peer.AddICECandidate(`{"candidate":"` + c + `","sdpMid":"0","sdpMLineIndex":0}`); err != nil {
				t.Fatal(err)
			}
			trickled++
			continue
		}
		bare = append(bare, line)
	}
	if trickled == 0 {
		t.Fatalf("agent offer has no candidate:\n%s", offer)
	}
	answer, err := peer.Answer(ctx, strings.Join(bare, "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Accept(answer); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "end of our candidates", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done
	})
	mu.Lock()
	cands := slices.Clone(local)
	mu.Unlock()
	if len(cands) == 0 {
		t.Fatal("no local candidate trickled")
	}
	for _, c := range cands {
		var init pion.ICECandidateInit
		if err := jsonUnmarshal(c, &init); err != nil {
			t.Fatalf("candidate %q: %v", c, err)
		}
		if err := agent.AddICECandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := agent.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := peer.AddICECandidate("not json"); err == nil {
		t.Error("AddICECandidate accepted garbage")
	}
}

func TestPeerStatesInOrderAndCloseIdempotent(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	var (
		mu     sync.Mutex
		states []webrtc.PeerState
	)
	peer, _ := connectAgent(t, e, agentsim.SimAgentOptions{}, func(s webrtc.PeerState) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	})
	if err := peer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := peer.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	mu.Lock()
	got := slices.Clone(states)
	mu.Unlock()
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("states %v are not strictly in order", got)
	}
	if !slices.Contains(got, webrtc.PeerStateConnected) || got[len(got)-1] != webrtc.PeerStateClosed {
		t.Errorf("states %v, want connected, then closed last", got)
	}
	if err := peer.WriteAudio(make([]byte, 160)); !errors.Is(err, webrtc.ErrPeerNotConnected) {
		t.Errorf("WriteAudio after Close = %v", err)
	}
	if _, err := peer.Answer(context.Background(), "v=0"); !errors.Is(err, webrtc.ErrPeerClosed) {
		t.Errorf("Answer after Close = %v", err)
	}
}

func TestPeerWriteAudioBeforeConnect(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	peer, err := e.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := peer.WriteAudio(make([]byte, 160)); !errors.Is(err, webrtc.ErrPeerNotConnected) {
		t.Errorf("WriteAudio before connect = %v, want ErrPeerNotConnected", err)
	}
	if _, err := peer.Answer(context.Background(), "not sdp"); err == nil {
		t.Error("Answer accepted garbage")
	}
}
