package sim_test

import (
	"time"

	"slices"
	"testing"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
)

func TestFramesLostAreGapsInChunks(t *testing.T) {
	sb := newSwitchboard(t)
	sb.skip = map[int]bool{7: true, 8: true, 15: true}
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "20 frames", func() bool { return a.report(sid).FramesReceived >= 20 })
	if r := a.report(sid); r.FramesLost != 3 {
		t.Errorf("%d frames lost, want 3", r.FramesLost)
	}
}

func TestEchoSendsBackWhatItHears(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{Echo: true, TelnyxWebhookURL: sb.url("/events")})
	sb.use(c)
	a := api{t, srv, c}
	_, body := a.telnyx("POST", "/v2/calls", map[string]any{
		"connection_id": c.ConnectionID(), "from": "+1", "to": "+15551230000", "stream_url": sb.wsURL(),
	})
	id := body["data"].(map[string]any)["call_control_id"].(string)
	redistest.Eventually(t, 10*time.Second, "the echo", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) >= 8000 })
	heard := sb.peer(0).heard()
	mid := heard[len(heard)/2-800 : len(heard)/2+800]
	if f, p := media.DominantFrequency(mid, media.VoiceBand(5)); f != 440 || p < 0.05 {
		t.Errorf("switchboard heard %v Hz at %.3f, want its own 440 Hz back", f, p)
	}
	a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", map[string]any{})
}

func TestStartStreamRunsAlongsideTheTwiML(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	sb.twiml = `<Response><Start><Stream url="` + sb.wsURL() + `"/></Start><Say>one two three</Say></Response>`
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the call to end with its TwiML", func() bool { return a.report(sid).Status == "completed" })
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return sb.peer(0) != nil && sb.peer(0).message("stop") != nil })
	if got := sb.peer(0).events(); got[0] != "connected" || got[1] != "start" || got[len(got)-1] != "stop" {
		t.Errorf("stream events %v", got)
	}
	if r := a.report(sid); r.StreamsOpened != 1 || r.FramesSent == 0 {
		t.Errorf("report %+v", r)
	}
	redistest.Eventually(t, 10*time.Second, "the completed callback", func() bool { return len(sb.statusesOf(sid)) == 4 })
	if got := sb.callStatuses(sid); !slices.Equal(got, []string{"initiated", "ringing", "in-progress", "completed"}) {
		t.Errorf("callbacks %v", got)
	}
	// A stream that cannot open is noted and the TwiML goes on.
	sb.twiml = `<Response><Connect><Stream url="ws://127.0.0.1:1/media"/></Connect></Response>`
	sid = a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the call to end", func() bool { return a.report(sid).Status == "completed" })
	if r := a.report(sid); len(r.Notes) != 1 || r.StreamsOpened != 0 {
		t.Errorf("report %+v", r)
	}
}
