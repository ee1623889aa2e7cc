package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/recording"
)

// TestRecordedCallServedFromAnyInstance: with recording on, a call answered by an agent on
// instance A is recorded there; instance B, whose recordings directory is its own, serves the
// recording by fetching it from A, with Range; the agent gets its own call's recording, another
// agent does not; the call's answer says how long it was recorded.
func TestRecordedCallServedFromAnyInstance(t *testing.T) {
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	d := newDeployment(t, 1, 0, map[string]string{"SWITCHBOARD_RECORDINGS_DIR": dirA})
	a := d.instances[0].base
	b := start(t, map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": d.ns, "SWITCHBOARD_RECORDINGS_DIR": dirB}).base
	annToken := createAgent(t, a, "ann")
	bobToken := createAgent(t, a, "bob")
	ann := softphone(t, a, annToken)

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	ring := expectMessage(t, ann, "ringing", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
	ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID})
	expectMessage(t, ann, "recording", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.Recording == "recording" })
	d.report(sid, "the caller hearing the agent", func(r sim.Report) bool { return r.DominantHz == 440 && r.DominantPower > 0.05 })
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "two seconds of talk", func() bool { return len(ann.Agent.Recording()) >= 16000 })
	if err := d.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, ann, "the end", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ended" })

	var got struct {
		Recording *struct {
			DurationMS int64 `json:"duration_ms"`
			Parts      []struct {
				State string `json:"state"`
			} `json:"parts"`
		} `json:"recording"`
	}
	redistest.Eventually(t, 10*time.Second, "the call's answer says it was recorded", func() bool {
		code := request(t, http.MethodGet, b+"/api/calls/"+ring.CallID, adminToken, nil, &got)
		return code == http.StatusOK && got.Recording != nil && len(got.Recording.Parts) == 1 && got.Recording.Parts[0].State == "done"
	})
	if got.Recording.DurationMS < 2000 {
		t.Fatalf("recorded for %d ms, want 2 s or more", got.Recording.DurationMS)
	}

	get := func(base, token, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/calls/"+ring.CallID+"/recording", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, base := range []string{a, b} {
		resp, body := get(base, adminToken, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" {
			t.Fatalf("%s: %d %s", base, resp.StatusCode, body)
		}
		info, err := recording.ReadInfo(bytes.NewReader(body))
		if err != nil || info.Channels != 2 || info.DataLen < 2*32000 || int64(len(body)) < info.DataOffset+info.DataLen {
			t.Fatalf("%s: the WAV's header %+v (%v), %d bytes", base, info, err, len(body))
		}
		part, pbody := get(base, adminToken, "bytes=0-43")
		if part.StatusCode != http.StatusPartialContent || string(pbody) != string(body[:44]) {
			t.Fatalf("%s, a range: %d (%d bytes)", base, part.StatusCode, len(pbody))
		}
	}
	if resp, _ := get(b, annToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the agent's own call's recording: %d", resp.StatusCode)
	}
	if resp, _ := get(b, bobToken, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another agent's call's recording: %d", resp.StatusCode)
	}
	var sue struct {
		Token string `json:"token"`
	}
	if code := request(t, http.MethodPut, a+"/api/admin/agents/sue", adminToken, map[string]string{"name": "Sue", "role": "supervisor"}, &sue); code != http.StatusCreated {
		t.Fatalf("create a supervisor: %d", code)
	}
	if resp, _ := get(b, sue.Token, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("a supervisor, any call's recording: %d", resp.StatusCode)
	}
}
