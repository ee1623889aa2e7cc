package webrtc_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// freeUDPPort finds a UDP port nobody uses right now on loopback.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// candidatePorts returns the ports of the SDP's candidates.
func candidatePorts(sdp string) []int {
	var ports []int
	for line := range strings.SplitSeq(sdp, "\r\n") {
		if c, ok := strings.CutPrefix(line, "a=candidate:"); ok {
			f := strings.Fields(c) // foundation component transport priority address port typ ...
			if len(f) > 5 {
				p, _ := strconv.Atoi(f[5])
				ports = append(ports, p)
			}
		}
	}
	return ports
}

func TestEngineUDPMuxSharesOnePort(t *testing.T) {
	port := freeUDPPort(t)
	e := newTestEngine(t, webrtc.EngineOptions{UDPMuxPort: port})
	addrs := e.UDPMuxAddrs()
	if len(addrs) != 1 || addrs[0].(*net.UDPAddr).Port != port {
		t.Fatalf("mux addresses %v, want one on port %d", addrs, port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{}, nil)
		ports := candidatePorts(peer.LocalSDP())
		if len(ports) == 0 {
			t.Fatal("answer has no candidate")
		}
		for _, p := range ports {
			if p != port {
				t.Errorf("peer %d: candidate on port %d, want the mux's %d", i, p, port)
			}
		}
		if err := agent.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: true, UDPMuxPort: port}); err == nil {
		t.Error("a second engine bound the same port")
	}
}

func TestEnginePublicIPsRewriteCandidates(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{PublicIPs: []string{"203.0.113.7"}})
	agent, err := agentsim.NewSimAgent(agentsim.SimAgentOptions{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	peer, err := e.NewPeer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer, err := agent.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := peer.Answer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, " 203.0.113.7 ") || strings.Contains(answer, " 127.0.0.1 ") {
		t.Errorf("answer candidates not rewritten to the public IP:\n%s", answer)
	}
}

func TestEngineWithRTCPReportsCarriesAudio(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{RTCPReports: true})
	peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{}, nil)
	var heard audioRecorder
	peer.SetAgentAudioSink(heard.sink)
	redistest.Eventually(t, 5*time.Second, "agent audio", func() bool { return heard.frames() >= 20 })
	if p := media.MiddlePower(heard.bytes(), 440); p < 0.05 {
		t.Errorf("440 Hz at %.4f", p)
	}
	if agent.FramesSent() < 20 {
		t.Errorf("agent sent %d frames", agent.FramesSent())
	}
}
