package sim_test

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
)

// instance plays one Switchboard instance's media WebSocket: it answers every stream with a
// 440 Hz tone, records what each stream says, and can die as a killed process does (every
// connection reset, no close frame).
type instance struct {
	t   *testing.T
	srv *httptest.Server
	// silent is how many frames of silence each stream begins with (a bridge still being
	// made): a gap in the caller's tone that does not depend on timing.
	silent int

	mu      sync.Mutex
	streams []*instanceStream
	conns   []net.Conn
}

type instanceStream struct {
	mu     sync.Mutex
	msgs   []map[string]any
	closed bool // the carrier closed it (or the connection broke)
}

func newInstance(t *testing.T) *instance {
	in := &instance{t: t}
	in.srv = httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *instance) wsURL() string { return "ws" + strings.TrimPrefix(in.srv.URL, "http") + "/media" }

func (in *instance) serve(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	st := &instanceStream{}
	in.mu.Lock()
	in.streams = append(in.streams, st)
	in.conns = append(in.conns, conn.UnderlyingConn())
	in.mu.Unlock()
	// The instance's 440 Hz, what the caller hears.
	tone := media.NewTone(440, 0.5)
	silence := make([]byte, media.FrameSamples)
	media.FillSilence(silence)
	defer sendEvery20ms(conn, func(n int) map[string]any {
		frame := silence
		if n > in.silent {
			frame = tone.Frame()
		}
		return map[string]any{"event": "media", "media": map[string]string{"payload": base64.StdEncoding.EncodeToString(frame)}}
	})()
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			st.mu.Lock()
			st.closed = true
			st.mu.Unlock()
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			st.mu.Lock()
			st.msgs = append(st.msgs, m)
			st.mu.Unlock()
		}
	}
}

// kill resets every connection of the instance, with no close frame: a SIGKILLed process.
func (in *instance) kill() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, c := range in.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, not FIN
		}
		c.Close()
	}
}

func (in *instance) stream(i int) *instanceStream {
	in.mu.Lock()
	defer in.mu.Unlock()
	if i < len(in.streams) {
		return in.streams[i]
	}
	return nil
}

// frames is how many media frames stream i has received; 0 if it is not open yet.
func (in *instance) frames(i int) int {
	st := in.stream(i)
	if st == nil {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, m := range st.msgs {
		if m["event"] == "media" {
			n++
		}
	}
	return n
}

func (st *instanceStream) events() (events []string, closed bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, m := range st.msgs {
		events = append(events, m["event"].(string))
	}
	return events, st.closed
}

func (st *instanceStream) first(event string) map[string]any {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, m := range st.msgs {
		if m["event"] == event {
			return m
		}
	}
	return nil
}

// firstAudio is the first media frame's audio.
func (st *instanceStream) firstAudio(t *testing.T) []byte {
	m := st.first("media")["media"].(map[string]any)
	b, err := base64.StdEncoding.DecodeString(m["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func connectTo(in *instance, after string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="` + in.wsURL() +
		`"><Parameter name="sb_call" value="c-1"/></Stream></Connect>` + after + `</Response>`
}

// TestTwilioRedirectMovesTheStream: an instance dies with the call's stream (reset, no close
// frame), Twilio goes on with the <Pause> after </Connect>, and a call update with new TwiML
// moves the stream to another instance: the caller's tone goes on where it was, the new
// stream numbers from 1, and the silence the caller heard is one tone gap.
func TestTwilioRedirectMovesTheStream(t *testing.T) {
	sb := newSwitchboard(t)
	// 1001 Hz: a frame's phase differs from the last one's, so a restarted tone shows.
	c, srv := newCarrier(t, sim.Config{WatchHz: 440, ToneHz: 1001})
	sb.use(c)
	a := api{t, srv, c}
	first, second := newInstance(t), newInstance(t)
	second.silent = 10
	sb.twiml = connectTo(first, `<Pause length="20"/><Hangup/>`)
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the first stream", func() bool { return first.frames(0) >= 25 })

	first.kill()
	redistest.Eventually(t, 10*time.Second, "the broken stream to be over", func() bool { return a.report(sid).StreamsOpen == 0 })
	if r := a.report(sid); r.Status != "in-progress" {
		t.Fatalf("the call did not wait in the pause: %s", r.Status)
	}
	sentBefore := a.report(sid).FramesSent

	status, body := a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Twiml": {connectTo(second, `<Pause length="20"/><Hangup/>`)}})
	if status != http.StatusOK || body["sid"] != sid || body["status"] != "in-progress" {
		t.Fatalf("redirect: %d %v", status, body)
	}
	redistest.Eventually(t, 10*time.Second, "the second stream", func() bool { return second.frames(0) >= 25 })
	st := second.stream(0)
	if got, _ := st.events(); !slices.Equal(got[:3], []string{"connected", "start", "media"}) {
		t.Errorf("new stream opens with %v", got[:3])
	}
	if m := st.first("media")["media"].(map[string]any); m["chunk"] != "1" || m["timestamp"] != "0" {
		t.Errorf("new stream's first frame %v", m)
	}
	// The tone goes on from where the first stream left it: the new stream's first frame is
	// the continuation of the call's one generator (give or take the frame or two the broken
	// connection took without counting them as sent), not a fresh start.
	got := st.firstAudio(t)
	if slices.Equal(got, media.NewTone(1001, 0.5).Frame()) {
		t.Error("the caller's tone restarted with the new stream")
	}
	cont := media.NewTone(1001, 0.5)
	cont.Read(make([]byte, sentBefore*media.FrameSamples))
	continued := false
	for range 4 {
		continued = continued || slices.Equal(got, cont.Frame())
	}
	if !continued {
		t.Error("the new stream's first frame does not continue the caller's tone")
	}

	a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"completed"}})
	a.waitStatus(sid, "completed")
	r := a.report(sid)
	if r.StreamsOpened != 2 || c.Stats().Repoints != 1 {
		t.Errorf("streams %d, repoints %d", r.StreamsOpened, c.Stats().Repoints)
	}
	t.Logf("tone gaps %v (the kill, the redirect, and the new instance's 200 ms of silence)", r.ToneGaps)
	if switches := switchGaps(r.ToneGaps); len(switches) != 1 || switches[0].Length > 5*time.Second {
		t.Errorf("tone gaps %v, want the one switch (with the new instance's 200 ms of silence)", r.ToneGaps)
	}
	if r.FramesLost != 0 {
		t.Errorf("%d frames lost (a new stream's numbering restarts)", r.FramesLost)
	}

	// A call that is over cannot be redirected: Twilio's 21220.
	status, body = a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Twiml": {connectTo(second, "")}})
	if status != http.StatusBadRequest || body["code"] != 21220.0 {
		t.Errorf("redirect of an ended call: %d %v", status, body)
	}
}

// TestTwilioRedirectStopsTheOpenStream: a redirect while the stream is open says stop on it
// and closes it, then runs the new TwiML, here fetched from a Url (signed as the voice
// webhook is).
func TestTwilioRedirectStopsTheOpenStream(t *testing.T) {
	sb, other := newSwitchboard(t), newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	other.use(c)
	a := api{t, srv, c}
	first := newInstance(t)
	sb.twiml = connectTo(first, `<Pause length="20"/><Hangup/>`)
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the first stream", func() bool { return first.frames(0) >= 5 })

	status, body := a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Url": {other.url("/voice")}, "Method": {"POST"}})
	if status != http.StatusOK {
		t.Fatalf("redirect: %d %v", status, body)
	}
	redistest.Eventually(t, 10*time.Second, "the first stream to stop", func() bool {
		ev, closed := first.stream(0).events()
		return closed && ev[len(ev)-1] == "stop"
	})
	redistest.Eventually(t, 10*time.Second, "the stream at the new Url", func() bool { return other.peer(0) != nil && len(other.peer(0).heard()) >= 800 })
	if v := other.voiceList(); len(v) != 1 || v[0].Get("CallSid") != sid || v[0].Get("CallStatus") != "in-progress" {
		t.Errorf("the new Url was asked %v", v)
	}
	if a.report(sid).Status != "in-progress" {
		t.Error("the call did not survive its redirect")
	}
	a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"completed"}})
	a.waitStatus(sid, "completed")

	// TwiML that does not parse is refused.
	status, _ = a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Twiml": {"<Nope/>"}})
	if status != http.StatusBadRequest {
		t.Errorf("bad TwiML: %d", status)
	}
}

// TestTwilioBrokenStreamGoesOnWithTheTwiML: a stream whose connection breaks (reset, no close
// frame) goes on with the TwiML after </Connect> exactly as a clean close does.
func TestTwilioBrokenStreamGoesOnWithTheTwiML(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	first := newInstance(t)
	sb.twiml = connectTo(first, `<Say>goodbye</Say><Hangup/>`)
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the stream", func() bool { return first.frames(0) >= 5 })
	first.kill()
	a.waitStatus(sid, "completed")
	if r := a.report(sid); r.HangupSource != "caller" || len(r.Notes) != 0 {
		t.Errorf("report %+v", r)
	}
}

// TestTelnyxStreamingStartMovesTheStream: a Telnyx call whose stream breaks stays up without
// media; streaming_start opens a new stream to the new stream_url; on an ended call it is 422
// 90018.
func TestTelnyxStreamingStartMovesTheStream(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{WatchHz: 440, TelnyxWebhookURL: sb.url("/events")})
	sb.use(c)
	a := api{t, srv, c}
	first, second := newInstance(t), newInstance(t)
	second.silent = 10
	_, body := a.telnyx("POST", "/v2/calls", map[string]any{
		"connection_id": c.ConnectionID(), "from": "+1", "to": "+15551230000", "stream_url": first.wsURL(),
	})
	id := body["data"].(map[string]any)["call_control_id"].(string)
	redistest.Eventually(t, 10*time.Second, "the first stream", func() bool { return first.frames(0) >= 25 })

	first.kill()
	redistest.Eventually(t, 10*time.Second, "streaming.stopped", func() bool { return slices.Contains(sb.eventTypes(id), "streaming.stopped") })
	if r := a.report(id); r.Status != "in-progress" {
		t.Fatalf("a broken stream ended the call: %s", r.Status)
	}

	start := func(stream string) (int, map[string]any) {
		return a.telnyx("POST", "/v2/calls/"+id+"/actions/streaming_start", map[string]any{
			"stream_url": stream, "stream_track": "inbound_track", "stream_bidirectional_mode": "rtp",
			"stream_codec": "PCMU", "stream_bidirectional_codec": "PCMU", "command_id": "s-" + stream,
		})
	}
	if status, body := start(second.wsURL()); status != http.StatusOK {
		t.Fatalf("streaming_start: %d %v", status, body)
	}
	redistest.Eventually(t, 10*time.Second, "the second stream", func() bool { return second.frames(0) >= 25 })
	st := second.stream(0)
	if m := st.first("media")["media"].(map[string]any); m["chunk"] != "1" {
		t.Errorf("new stream's first frame %v", m)
	}
	if s := st.first("start"); s["start"].(map[string]any)["call_control_id"] != id {
		t.Errorf("start %v", s)
	}
	if status, _ := start("http://not-a-stream"); status != http.StatusUnprocessableEntity {
		t.Errorf("bad stream_url: %d", status)
	}

	a.telnyx("POST", "/v2/calls/"+id+"/actions/hangup", map[string]any{})
	a.waitStatus(id, "completed")
	r := a.report(id)
	if r.StreamsOpened != 2 || r.StreamURL != second.wsURL() || len(switchGaps(r.ToneGaps)) != 1 {
		t.Errorf("streams %d to %s, tone gaps %v", r.StreamsOpened, r.StreamURL, r.ToneGaps)
	}
	status, body := start(second.wsURL() + "?again")
	errs, _ := body["errors"].([]any)
	if status != http.StatusUnprocessableEntity || len(errs) == 0 || errs[0].(map[string]any)["code"] != "90018" {
		t.Errorf("streaming_start on an ended call: %d %v", status, body)
	}
	redistest.Eventually(t, 10*time.Second, "the webhooks", func() bool { return slices.Contains(sb.eventTypes(id), "call.hangup") })
	if got := sb.eventTypes(id); !slices.Equal(got, []string{"call.initiated", "call.answered", "streaming.started", "streaming.stopped",
		"streaming.started", "streaming.stopped", "call.hangup"}) {
		t.Errorf("webhooks %v", got)
	}
}

// switchGaps are the tone gaps as long as the new instance's deliberate 200 ms of silence: the
// switch. Shorter ones are the test's own instances stalling on a loaded machine (a paced
// writer late by a few frames), not the carrier's doing.
func switchGaps(gaps []media.ToneGap) []media.ToneGap {
	var out []media.ToneGap
	for _, g := range gaps {
		if g.Length >= 200*time.Millisecond {
			out = append(out, g)
		}
	}
	return out
}
