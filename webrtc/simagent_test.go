package webrtc_test

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

func TestSimAgentRecordLimitAndControls(t *testing.T) {
	e := newTestEngine(t, webrtc.EngineOptions{})
	var arrivals []time.Time
	peer, agent := connectAgent(t, e, agentsim.SimAgentOptions{
		RecordLimit: 4 * media.FrameSamples,
		OnFrame:     func(_ []byte, at time.Time) { arrivals = append(arrivals, at) },
	}, nil)

	var heard audioRecorder
	peer.SetAgentAudioSink(heard.sink)
	redistest.Eventually(t, 5*time.Second, "agent audio", func() bool {
		return heard.frames() >= 10
	})
	agent.Mute(true)
	from := heard.frames() + 1
	redistest.Eventually(t, 5*time.Second, "muted agent audio", func() bool { return heard.frames() >= from+10 })
	if p := media.Goertzel(heard.bytes()[from*media.FrameSamples:], 440); p != 0 {
		t.Errorf("muted agent sends 440 Hz at %.4f", p)
	}

	for range 20 {
		if err := peer.WriteAudio(media.NewTone(1000, 0.5).Frame()); err != nil {
			t.Fatal(err)
		}
	}
	redistest.Eventually(t, 5*time.Second, "frames at the agent", func() bool { return agent.FramesReceived() >= 20 })
	if n := len(agent.Recording()); n > 2*4*media.FrameSamples {
		t.Errorf("recording holds %d bytes, limit %d", n, 4*media.FrameSamples)
	}
	agent.ResetRecording()
	if len(agent.Recording()) != 0 {
		t.Error("ResetRecording kept audio")
	}
	if err := agent.Close(); err != nil {
		t.Fatal(err)
	}
	if len(arrivals) != agent.FramesReceived() {
		t.Errorf("%d arrivals for %d frames", len(arrivals), agent.FramesReceived())
	}
	if err := agent.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := agent.SendDTMF("12"); !errors.Is(err, media.ErrBadDigit) {
		t.Errorf("SendDTMF(12) = %v", err)
	}
}
