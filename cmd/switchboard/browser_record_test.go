package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/media"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// TestBrowserRecordsWithAPause: with recording on demand, an agent in Chromium starts the
// recording, pauses it (a card number), resumes it, and the caller hangs up. The recording the
// API serves has the caller's 1 kHz on the left, the browser's 440 Hz on the right, and the
// paused span silent on both; the page showed each state as the server put it in force.
func TestBrowserRecordsWithAPause(t *testing.T) {
	d := newDeployment(t, 1, 0, map[string]string{
		"SWITCHBOARD_RECORDINGS_DIR": filepath.Join(t.TempDir(), "rec"), "SWITCHBOARD_RECORD": "on-demand"})
	base := d.instances[0].base
	p := signInAnn(t, base, writeToneWAV(t, browserHz, 0.5, 30))

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	p.wait("the call ringing", visible("incoming-panel"))
	p.do("answer", chromedp.Click(tid("answer-button")))
	p.wait("connected", dataState("call-state", "in-progress"))
	p.wait("not recorded yet", visible("record-state")+` && `+dataState("record-state", "off"))
	d.report(sid, "the caller hearing the browser", func(r sim.Report) bool { return r.DominantHz == browserHz && r.DominantPower > 0.2 })

	p.do("record", chromedp.Click(tid("record-toggle")))
	p.wait("recording", dataState("record-state", "recording"))
	talk := func(what string) {
		t.Helper()
		r0 := d.report(sid, what, func(sim.Report) bool { return true })
		d.report(sid, what, func(r sim.Report) bool { return r.BytesReceived >= r0.BytesReceived+16000 }) // 2 s more of the agent
	}
	talk("two seconds recorded")
	p.do("pause", chromedp.Click(tid("record-toggle")))
	p.wait("paused", dataState("record-state", "paused"))
	talk("two seconds paused")
	p.do("resume", chromedp.Click(tid("record-toggle")))
	p.wait("recording again", dataState("record-state", "recording"))
	talk("two seconds more")
	if err := d.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	p.wait("the call over", `document.querySelector('[data-testid="call-panel"]').hidden`)
	found, err := d.st.CallByCarrierID(context.Background(), sid, "simtw")
	if err != nil {
		t.Fatal(err)
	}

	var got struct {
		call.Call
		Recording *struct {
			DurationMS int64 `json:"duration_ms"`
			Parts      []struct {
				State  string `json:"state"`
				Paused []struct {
					From int64 `json:"from_ms"`
					To   int64 `json:"to_ms"`
				} `json:"paused"`
			} `json:"parts"`
		} `json:"recording"`
	}
	redistest.Eventually(t, 10*time.Second, "the recording stored done", func() bool {
		code := request(t, http.MethodGet, base+"/api/calls/"+found.ID, adminToken, nil, &got)
		return code == http.StatusOK && got.Recording != nil && len(got.Recording.Parts) == 1 && got.Recording.Parts[0].State == "done"
	})
	part := got.Recording.Parts[0]
	if len(part.Paused) != 1 {
		t.Fatalf("paused spans %+v, want one", part.Paused)
	}
	span := part.Paused[0]
	t.Logf("recorded %d ms, paused %d..%d ms", got.Recording.DurationMS, span.From, span.To)

	req, _ := http.NewRequest(http.MethodGet, base+"/api/calls/"+found.ID+"/recording", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	info, err := recording.ReadInfo(bytes.NewReader(wav))
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("the recording: %d %v", resp.StatusCode, err)
	}
	channels := func(fromMS, toMS int64) (left, right []byte) {
		const frame = media.FrameSamples * 4 // bytes of one 20 ms stereo frame
		start, end := info.DataOffset+fromMS/20*frame, min(info.DataOffset+toMS/20*frame, info.DataOffset+info.DataLen)
		for i := start; i+4 <= end; i += 4 {
			left = append(left, media.EncodeUlaw(int16(binary.LittleEndian.Uint16(wav[i:]))))
			right = append(right, media.EncodeUlaw(int16(binary.LittleEndian.Uint16(wav[i+2:]))))
		}
		return left, right
	}
	l, r := channels(span.From-1500, span.From-200)
	if pl, pr := media.Goertzel(l, simulatorHz), media.Goertzel(r, browserHz); pl < 0.05 || pr < 0.05 {
		t.Errorf("before the pause: the caller's 1 kHz on the left at %.4f, the agent's 440 Hz on the right at %.4f", pl, pr)
	}
	if cross := media.Goertzel(l, browserHz) + media.Goertzel(r, simulatorHz); cross > 0.01 {
		t.Errorf("before the pause, the channels carry each other's tone: %.4f", cross)
	}
	l, r = channels(span.From+40, span.To-40)
	for i := range l {
		if media.DecodeUlaw(l[i]) != 0 || media.DecodeUlaw(r[i]) != 0 {
			t.Fatalf("the paused span is not silent at sample %d", i)
		}
	}
}
