package webhooks

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// recordingMedia is a MediaHandler that keeps what it is handed and greets each stream with
// one frame of audio back to the carrier.
type recordingMedia struct {
	mu      sync.Mutex
	streams []*MediaStream
	audio   [][]byte
	digits  []string
	stopped chan struct{}
}

// waitStopped waits for a stream to stop and returns what was recorded by then.
func (r *recordingMedia) waitStopped(t *testing.T) ([]*MediaStream, [][]byte) {
	t.Helper()
	select {
	case <-r.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not stop")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.streams), slices.Clone(r.audio)
}

func (r *recordingMedia) StreamStarted(_ context.Context, s *MediaStream) (MediaReceiver, error) {
	r.mu.Lock()
	r.streams = append(r.streams, s)
	r.mu.Unlock()
	if err := s.SendAudio([]byte{0xff, 0x7f, 0x00}); err != nil {
		return nil, err
	}
	return r, nil
}
func (r *recordingMedia) Audio(b []byte) {
	r.mu.Lock()
	r.audio = append(r.audio, append([]byte(nil), b...))
	r.mu.Unlock()
}
func (r *recordingMedia) DTMF(d string) { r.mu.Lock(); r.digits = append(r.digits, d); r.mu.Unlock() }
func (r *recordingMedia) Stopped()      { close(r.stopped) }

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

func TestTwilioMediaStream(t *testing.T) {
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Media = media })
	id := store.NewCallID()
	url := h.srv.TwilioStreamURL("tw", id)
	if !strings.HasPrefix(url, wsURL(h.http.URL)) {
		t.Fatalf("stream URL %s is not on the public URL", url)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned handshake: %v %v", resp, err)
	}
	hdr := http.Header{"X-Twilio-Signature": {SignTwilio(twilioToken, url, nil)}}
	conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(s string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)
	send(`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],` +
		`"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"sb_call":"` + id + `"}},"streamSid":"MZ1"}`)
	// Our greeting comes back in Twilio framing, addressed to the stream.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, back, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"streamSid":"MZ1"`; !strings.Contains(string(back), want) || !strings.Contains(string(back), base64.StdEncoding.EncodeToString([]byte{0xff, 0x7f, 0x00})) {
		t.Fatalf("frame to carrier: %s", back)
	}
	for i := range 3 {
		payload := base64.StdEncoding.EncodeToString([]byte{byte(i), 1, 2})
		send(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"MZ1"}`, i+2, i+1, 20*i, payload))
	}
	send(`{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"7"}}`)
	send(`{"event":"stop","sequenceNumber":"6","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}`)
	streams, audio := media.waitStopped(t)
	if len(streams) != 1 || streams[0].CallID != id || streams[0].CarrierCallID != "CA1" {
		t.Fatalf("streams: %+v", streams)
	}
	media.mu.Lock()
	digits := slices.Clone(media.digits)
	media.mu.Unlock()
	if len(audio) != 3 || audio[2][0] != 2 || len(digits) != 1 || digits[0] != "7" {
		t.Fatalf("audio %v digits %v", audio, digits)
	}
}

func TestTelnyxMediaStreamNeedsOurToken(t *testing.T) {
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Media = media })
	id := store.NewCallID()
	good := h.srv.TelnyxStreamURL("tx", id)
	for _, bad := range []string{
		strings.Split(good, "&token=")[0],
		strings.Replace(good, "token=", "token=0", 1),
		h.srv.TelnyxStreamURL("tw", id), // a token for another carrier
	} {
		if _, resp, err := websocket.DefaultDialer.Dial(strings.Replace(bad, "/tw/", "/tx/", 1), nil); err == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: handshake accepted", bad)
		}
	}
	conn, _, err := websocket.DefaultDialer.Dial(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"start","sequence_number":"1","start":{"call_control_id":"v3:abc","client_state":"`+
		base64.StdEncoding.EncodeToString([]byte(id))+`","media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}},"stream_id":"s1"}`))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, back, err := conn.ReadMessage(); err != nil || !strings.Contains(string(back), `"event":"media"`) {
		t.Fatalf("frame to carrier: %s %v", back, err)
	}
	conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"media","sequence_number":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"`+
		base64.StdEncoding.EncodeToString([]byte{9, 9})+`"},"stream_id":"s1"}`))
	conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"stop","sequence_number":"3","stop":{"call_control_id":"v3:abc"},"stream_id":"s1"}`))
	streams, audio := media.waitStopped(t)
	if len(streams) != 1 || streams[0].CallID != id || len(audio) != 1 {
		t.Fatalf("streams %+v audio %v", streams, audio)
	}
}
