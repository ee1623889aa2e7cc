package sim_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
)

func TestTwilioOutboundAnsweredCall(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}

	before := time.Now().Add(-time.Second)
	sid := a.dialTwilio(sb, "+15551230000")

	// Callbacks in the real order, the voice URL fetched, a media stream opened.
	redistest.Eventually(t, 10*time.Second, "initiated, ringing, in-progress", func() bool { return len(sb.statusesOf(sid)) == 3 })
	if got := sb.callStatuses(sid); !slices.Equal(got, []string{"initiated", "ringing", "in-progress"}) {
		t.Fatalf("callbacks %v", got)
	}
	for i, p := range sb.statusesOf(sid) {
		for key, want := range map[string]string{
			"AccountSid": c.AccountSID(), "ApiVersion": "2010-04-01", "Direction": "outbound-api",
			"From": "+15005550006", "Caller": "+15005550006", "To": "+15551230000", "Called": "+15551230000",
			"CallbackSource": "call-progress-events", "SequenceNumber": strconv.Itoa(i),
		} {
			if got := p.Get(key); got != want {
				t.Errorf("callback %d: %s = %q, want %q", i, key, got, want)
			}
		}
		ts, err := time.Parse(time.RFC1123Z, p.Get("Timestamp"))
		if err != nil || ts.Before(before) || !ts.Before(time.Now().Add(time.Second)) {
			t.Errorf("callback %d: Timestamp %q: %v", i, p.Get("Timestamp"), err)
		}
		if p.Has("CallDuration") || p.Has("SipResponseCode") {
			t.Errorf("callback %d is not terminal but carries %v", i, p)
		}
	}
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) >= 3200 })
	voice := sb.voiceList()
	if len(voice) != 1 || voice[0].Get("CallSid") != sid || voice[0].Get("CallStatus") != "in-progress" {
		t.Errorf("voice webhook: %v", voice)
	}

	peer := sb.peer(0)
	if got := peer.events()[:3]; !slices.Equal(got, []string{"connected", "start", "media"}) {
		t.Errorf("media stream opens with %v", got)
	}
	start := peer.message("start")["start"].(map[string]any)
	if start["callSid"] != sid || start["accountSid"] != c.AccountSID() {
		t.Errorf("start: %v", start)
	}
	if p := start["customParameters"].(map[string]any); p["sb_call"] != "CL"+sid {
		t.Errorf("customParameters %v", p)
	}
	if f := start["mediaFormat"].(map[string]any); f["encoding"] != "audio/x-mulaw" || f["sampleRate"] != 8000.0 || f["channels"] != 1.0 {
		t.Errorf("mediaFormat %v", f)
	}
	first := peer.message("media")
	if m := first["media"].(map[string]any); m["track"] != "inbound" || m["chunk"] != "1" || m["timestamp"] != "0" {
		t.Errorf("first media frame %v", m)
	}
	if first["streamSid"] != peer.message("start")["streamSid"] || first["sequenceNumber"] != "2" {
		t.Errorf("media frame numbering: %v", first)
	}

	// Switchboard hears the 1 kHz tone; the carrier hears Switchboard's 440 Hz.
	heard := peer.heard()
	mid := heard[len(heard)/2-800 : len(heard)/2+800]
	if p1k, p440 := media.Goertzel(mid, 1000), media.Goertzel(mid, 440); p1k < 0.05 || p440 > 0.01 {
		t.Errorf("switchboard heard 1000 Hz at %.3f and 440 Hz at %.3f", p1k, p440)
	}
	redistest.Eventually(t, 10*time.Second, "the carrier to hear 440 Hz", func() bool {
		r := a.report(sid)
		return r.BytesReceived >= 3200 && r.DominantHz == 440
	})
	redistest.Eventually(t, 10*time.Second, "the mark to come back", func() bool { return peer.message("mark") != nil })
	if err := c.SendDigits(sid, "7#"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the digits", func() bool { return peer.message("dtmf") != nil })
	if d := peer.message("dtmf")["dtmf"].(map[string]any); d["digit"] != "7" || d["track"] != "inbound_track" {
		t.Errorf("dtmf %v", d)
	}

	// Switchboard hangs up through REST.
	status, call := a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"completed"}})
	if status != http.StatusOK || call["status"] != "completed" || call["end_time"] == nil {
		t.Fatalf("hangup: %d %v", status, call)
	}
	redistest.Eventually(t, 10*time.Second, "the completed callback", func() bool { return len(sb.statusesOf(sid)) == 4 })
	done := sb.statusesOf(sid)[3]
	for key, want := range map[string]string{
		"CallStatus": "completed", "SequenceNumber": "3", "SipResponseCode": "200", "Duration": "1",
	} {
		if got := done.Get(key); got != want {
			t.Errorf("completed callback: %s = %q, want %q", key, got, want)
		}
	}
	if d, err := strconv.Atoi(done.Get("CallDuration")); err != nil || d < 1 {
		t.Errorf("CallDuration %q", done.Get("CallDuration"))
	}
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return peer.message("stop") != nil })
	if stop := peer.message("stop")["stop"].(map[string]any); stop["callSid"] != sid {
		t.Errorf("stop %v", stop)
	}

	redistest.Eventually(t, 10*time.Second, "the carrier to record the completed callback", func() bool { return len(a.report(sid).Callbacks) == 4 })
	r := a.report(sid)
	if r.Status != "completed" || r.FramesSent < 10 || r.FramesReceived < 10 || r.FramesLost != 0 || r.DominantHz != 440 ||
		r.MarksReceived != 1 || r.DigitsSent != "7#" || r.StreamURL != sb.wsURL() {
		t.Errorf("report %+v", r)
	}
	if len(r.Callbacks) != 4 || !r.Callbacks[3].Acked || r.Callbacks[3].StatusCode != 204 ||
		r.Callbacks[3].EventID != sid+":3:completed" {
		t.Errorf("report callbacks %+v", r.Callbacks)
	}
	if _, call := a.twilio("GET", "/Calls/"+sid+".json", nil); call["status"] != "completed" || call["direction"] != "outbound-api" {
		t.Errorf("GET call %v", call)
	}
}

func TestTwilioDestinationRule(t *testing.T) {
	tests := []struct {
		to        string
		callbacks []string
		sip       string
	}{
		{"+15551230001", []string{"initiated", "busy"}, "486"},
		{"+15551230002", []string{"initiated", "ringing", "no-answer"}, "487"},
		{"+15551230004", []string{"initiated", "ringing", "no-answer"}, "603"},
	}
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	for _, tt := range tests {
		sid := a.dialTwilio(sb, tt.to)
		redistest.Eventually(t, 10*time.Second, tt.to+" to end", func() bool { return len(sb.statusesOf(sid)) == len(tt.callbacks) })
		if got := sb.callStatuses(sid); !slices.Equal(got, tt.callbacks) {
			t.Errorf("%s: callbacks %v, want %v", tt.to, got, tt.callbacks)
		}
		last := sb.statusesOf(sid)[len(tt.callbacks)-1]
		if last.Get("SipResponseCode") != tt.sip || last.Get("CallDuration") != "0" || last.Has("Duration") {
			t.Errorf("%s: terminal callback %v", tt.to, last)
		}
		if r := a.report(sid); r.Status != tt.callbacks[len(tt.callbacks)-1] || r.FramesSent != 0 {
			t.Errorf("%s: report %+v", tt.to, r)
		}
	}
	if len(sb.voiceList()) != 0 {
		t.Error("an unanswered call fetched TwiML")
	}

	status, body := a.twilio("POST", "/Calls.json", url.Values{
		"To": {"+15551230003"}, "From": {"+15005550006"}, "Url": {sb.url("/voice")},
	})
	if status != http.StatusBadRequest || body["code"] != 21211.0 || body["status"] != 400.0 ||
		body["message"] != "Invalid 'To' Phone Number: +15551230003" || body["more_info"] == nil {
		t.Errorf("invalid number: %d %v", status, body)
	}
	if s := c.Stats(); s.CallsCreated != 3 || s.CallsByStatus["busy"] != 1 || s.CallsByStatus["no-answer"] != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestTwilioOnlyCompletedByDefault(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	status, call := a.twilio("POST", "/Calls.json", url.Values{
		"To": {"+15551230001"}, "From": {"+15005550006"}, "Url": {sb.url("/voice")},
		"StatusCallback": {sb.url("/status?tenant=a%20b")},
	})
	if status != http.StatusCreated || call["status"] != "queued" || call["account_sid"] != c.AccountSID() {
		t.Fatalf("create: %d %v", status, call)
	}
	sid := call["sid"].(string)
	a.waitStatus(sid, "busy")
	redistest.Eventually(t, 10*time.Second, "the callback", func() bool { return len(sb.statusesOf(sid)) == 1 })
	if got := sb.statusesOf(sid)[0]; got.Get("CallStatus") != "busy" || got.Get("SequenceNumber") != "0" {
		t.Errorf("callback %v", got)
	}
}

func TestTwilioCancelWhileRinging(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{RingTimeout: time.Hour})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230002")
	a.waitStatus(sid, "ringing")
	status, call := a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"canceled"}})
	if status != http.StatusOK || call["status"] != "canceled" {
		t.Fatalf("cancel: %d %v", status, call)
	}
	redistest.Eventually(t, 10*time.Second, "the canceled callback", func() bool { return len(sb.statusesOf(sid)) == 3 })
	if last := sb.statusesOf(sid)[2]; last.Get("CallStatus") != "canceled" || last.Get("SipResponseCode") != "487" {
		t.Errorf("callback %v", last)
	}
	// Hanging up a finished call changes nothing.
	if status, call := a.twilio("POST", "/Calls/"+sid+".json", url.Values{"Status": {"completed"}}); status != 200 || call["status"] != "canceled" {
		t.Errorf("second hangup: %d %v", status, call)
	}
}

func TestTwilioSayAndHangup(t *testing.T) {
	sb := newSwitchboard(t)
	sb.twiml = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Goodbye</Say><Play>x.mp3</Play><Hangup/><Say>never</Say></Response>`
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the call to end by itself", func() bool { return len(sb.statusesOf(sid)) == 4 })
	if got := sb.callStatuses(sid); got[3] != "completed" {
		t.Errorf("callbacks %v", got)
	}
	r := a.report(sid)
	if r.StreamsOpened != 0 || len(r.Notes) != 1 || r.EndedAt.Sub(r.AnsweredAt) < 100*time.Millisecond {
		t.Errorf("report %+v", r)
	}
}

func TestTwilioApplicationError(t *testing.T) {
	sb := newSwitchboard(t)
	sb.voiceCode = http.StatusInternalServerError
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	sid := a.dialTwilio(sb, "+15551230000")
	redistest.Eventually(t, 10*time.Second, "the call to end", func() bool { return len(sb.statusesOf(sid)) == 4 })
	r := a.report(sid)
	if r.Status != "completed" || len(r.Notes) != 1 || r.StreamsOpened != 0 {
		t.Errorf("report %+v", r)
	}
	if s := c.Stats(); s.VoiceRequests != 1 || s.VoiceFailed != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestTwilioFallbackURL: a voice URL nothing answers (its instance is gone) makes the
// simulator ask the call's FallbackUrl at once, signed over that URL, with ErrorCode 11200
// and the failed URL as ErrorUrl; the fallback's TwiML runs the call.
func TestTwilioFallbackURL(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}
	gone := "http://" + refusingWebSocketURL(t)[len("ws://"):]
	status, created := a.twilio("POST", "/Calls.json", url.Values{
		"To": {"+15551230000"}, "From": {"+15005550006"}, "Url": {gone}, "FallbackUrl": {sb.url("/voice?fallback=1")},
		"StatusCallback": {sb.url("/status")}, "StatusCallbackEvent": {"initiated", "ringing", "answered", "completed"},
	})
	if status != http.StatusCreated {
		t.Fatalf("create call: %d %v", status, created)
	}
	sid := created["sid"].(string)
	redistest.Eventually(t, 10*time.Second, "the stream of the fallback's TwiML", func() bool { return sb.peer(0) != nil })
	sb.mu.Lock()
	voice := slices.Clone(sb.voice)
	sb.mu.Unlock()
	if len(voice) != 1 || voice[0].Get("ErrorCode") != "11200" || voice[0].Get("ErrorUrl") != gone || voice[0].Get("CallSid") != sid {
		t.Fatalf("the fallback request: %v", voice)
	}
	if s := c.Stats(); s.VoiceRequests != 2 || s.VoiceFailed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestTwilioRESTErrors(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{})
	sb.use(c)
	a := api{t, srv, c}

	req, _ := http.NewRequest("GET", srv.URL+"/2010-04-01/Accounts/"+c.AccountSID()+"/Calls/CA00.json", nil)
	req.SetBasicAuth(c.AccountSID(), "wrong")
	if status, body := a.do(req); status != 401 || body["code"] != 20003.0 {
		t.Errorf("bad token: %d %v", status, body)
	}
	if status, body := a.twilio("GET", "/Calls/CA00.json", nil); status != 404 || body["code"] != 20404.0 {
		t.Errorf("unknown call: %d %v", status, body)
	}
	for _, tt := range []struct {
		form url.Values
		code float64
	}{
		{url.Values{"From": {"+1"}, "Url": {"http://x"}}, 21201},
		{url.Values{"To": {"+1"}, "Url": {"http://x"}}, 21603},
		{url.Values{"To": {"+1"}, "From": {"+1"}}, 21205},
		{url.Values{"To": {"+1"}, "From": {"+1"}, "Url": {"http://x"}, "Timeout": {"0"}}, 21208},
	} {
		if status, body := a.twilio("POST", "/Calls.json", tt.form); status != 400 || body["code"] != tt.code {
			t.Errorf("%v: %d %v", tt.form, status, body)
		}
	}
}

func TestTwilioInbound(t *testing.T) {
	sb := newSwitchboard(t)
	c, srv := newCarrier(t, sim.Config{TwilioVoiceURL: sb.url("/voice"), TwilioStatusURL: sb.url("/status")})
	sb.use(c)
	a := api{t, srv, c}

	sid, err := c.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the media stream", func() bool { return sb.peer(0) != nil && len(sb.peer(0).heard()) > 1600 })
	v := sb.voiceList()[0]
	if v.Get("Direction") != "inbound" || v.Get("CallStatus") != "ringing" || v.Get("From") != "+15557654321" || v.Get("CallSid") != sid {
		t.Errorf("voice webhook %v", v)
	}
	if err := c.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the completed callback", func() bool { return len(sb.statusesOf(sid)) == 1 })
	if done := sb.statusesOf(sid)[0]; done.Get("CallStatus") != "completed" || done.Get("Direction") != "inbound" || done.Get("SequenceNumber") != "0" {
		t.Errorf("callback %v", done)
	}
	redistest.Eventually(t, 10*time.Second, "the stream to stop", func() bool { return sb.peer(0).message("stop") != nil })
	if r := a.report(sid); r.Direction != "inbound" || r.Status != "completed" || r.FramesSent == 0 {
		t.Errorf("report %+v", r)
	}
	if _, call := a.twilio("GET", "/Calls/"+sid+".json", nil); call["direction"] != "inbound" {
		t.Errorf("GET %v", call)
	}
}
