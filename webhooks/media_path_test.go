package webhooks

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// dialTwilioMedia opens a media WebSocket as Twilio does: X-Twilio-Signature over signedURL,
// the request sent to url (they differ only when a test replays a signature).
func dialTwilioMedia(t *testing.T, url, signedURL string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	hdr := http.Header{"X-Twilio-Signature": {SignTwilio(twilioToken, signedURL, nil)}}
	return websocket.DefaultDialer.Dial(url, hdr)
}

// twilioStartFixture is Twilio's documented start frame, with our sb_call parameter added
// when sbCall is not empty (we add it with <Parameter> in the TwiML).
func twilioStartFixture(t *testing.T, sbCall string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, "twilio/media-start.json"), &m); err != nil {
		t.Fatal(err)
	}
	if sbCall != "" {
		m["start"].(map[string]any)["customParameters"].(map[string]any)["sb_call"] = sbCall
	}
	b, _ := json.Marshal(m)
	return b
}

// playFixtureStream sends Twilio's documented frames, start first, then waits for the
// stream to end.
func playFixtureStream(t *testing.T, conn *websocket.Conn, start []byte) {
	t.Helper()
	frames := [][]byte{fixture(t, "twilio/media-connected.json"), start, fixture(t, "twilio/media-media.json"),
		fixture(t, "twilio/media-mark.json"), fixture(t, "twilio/media-stop.json")}
	for _, f := range frames {
		if conn.WriteMessage(websocket.TextMessage, f) != nil {
			break // the server refused the stream and closed it; the tests check what it kept
		}
	}
	// Read until the server closes: our greeting, then the close after stop.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

// TestTwilioMediaBoundToTheCall: the stream URL we hand Twilio names the call; its signed
// handshake opens that call's stream only, whatever the (unsigned) start frame says.
func TestTwilioMediaBoundToTheCall(t *testing.T) {
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Media = media })
	a, b := store.NewCallID(), store.NewCallID()
	urlA, urlB := h.srv.TwilioStreamURL("tw", a), h.srv.TwilioStreamURL("tw", b)
	if !strings.HasSuffix(urlA, "/webhooks/tw/media/"+a) {
		t.Fatalf("stream URL %s does not name the call", urlA)
	}

	// A handshake signature captured for call A, replayed on call B's path: refused.
	if _, resp, err := dialTwilioMedia(t, urlB, urlA); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replayed handshake: %v %v", resp, err)
	}
	// Not a call id in the path: refused before anything else.
	if _, resp, err := dialTwilioMedia(t, urlA+"x", urlA+"x"); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("malformed call in the path: %v %v", resp, err)
	}

	// A's own handshake, whose start frame names call B: the stream is refused and closed.
	conn, _, err := dialTwilioMedia(t, urlA, urlA)
	if err != nil {
		t.Fatal(err)
	}
	playFixtureStream(t, conn, twilioStartFixture(t, b))
	conn.Close()
	media.mu.Lock()
	started := len(media.streams)
	media.mu.Unlock()
	if started != 0 {
		t.Fatalf("a start naming another call started a stream")
	}

	// A's handshake and the documented frames (sb_call = A, as our TwiML sets it): call A's
	// stream, with the documented audio. With the trailing slash a carrier may add, too.
	conn, resp, err := dialTwilioMedia(t, urlA+"/", urlA+"/")
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("trailing slash: %v %v", resp, err)
	}
	playFixtureStream(t, conn, twilioStartFixture(t, a))
	conn.Close()
	streams, audio := media.waitStopped(t)
	if len(streams) != 1 || streams[0].CallID != a || streams[0].CarrierCallID != "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" ||
		len(audio) != 1 || len(audio[0]) != 9 {
		t.Fatalf("streams %+v audio %v", streams, audio)
	}
}

// TestTwilioMediaPathWithoutSbCall: on a per-call path the path names the call; a start
// frame without our parameter (the docs' own example) is that call's.
func TestTwilioMediaPathWithoutSbCall(t *testing.T) {
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Media = media })
	a := store.NewCallID()
	conn, _, err := dialTwilioMedia(t, h.srv.TwilioStreamURL("tw", a), h.srv.TwilioStreamURL("tw", a))
	if err != nil {
		t.Fatal(err)
	}
	playFixtureStream(t, conn, twilioStartFixture(t, ""))
	conn.Close()
	streams, _ := media.waitStopped(t)
	if len(streams) != 1 || streams[0].CallID != a {
		t.Fatalf("streams %+v", streams)
	}
}

// TestTwilioLegacyMediaRoute: streams configured before per-call paths (the carrier-wide
// /media URL) still work; there the start frame names the call.
func TestTwilioLegacyMediaRoute(t *testing.T) {
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Media = media })
	legacy := wsURL(h.http.URL) + "/webhooks/tw/media"
	a := store.NewCallID()
	conn, _, err := dialTwilioMedia(t, legacy, legacy)
	if err != nil {
		t.Fatal(err)
	}
	playFixtureStream(t, conn, twilioStartFixture(t, a))
	conn.Close()
	streams, _ := media.waitStopped(t)
	if len(streams) != 1 || streams[0].CallID != a {
		t.Fatalf("streams %+v", streams)
	}
}

// TestTelnyxMediaOnTheCallPath: a Telnyx token is for one call; on a per-call path it must
// be that call's.
func TestTelnyxMediaOnTheCallPath(t *testing.T) {
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Media = media })
	a, b := store.NewCallID(), store.NewCallID()
	tokenA := strings.Split(h.srv.TelnyxStreamURL("tx", a), "token=")[1]
	base := wsURL(h.http.URL) + "/webhooks/tx/media/"
	for _, bad := range []string{
		base + b + "?token=" + tokenA,                   // A's token on B's path
		base + a + "?sb_call=" + b + "&token=" + tokenA, // path and query disagree
	} {
		if _, resp, err := websocket.DefaultDialer.Dial(bad, nil); err == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %v %v", bad, resp, err)
		}
	}
	conn, _, err := websocket.DefaultDialer.Dial(base+a+"?token="+tokenA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Telnyx's documented frames: their client_state is not one of our call ids, so the
	// stream is the token's call.
	for _, f := range []string{"connected", "start", "media", "mark", "stop"} {
		if err := conn.WriteMessage(websocket.TextMessage, fixture(t, "telnyx/media-"+f+".json")); err != nil {
			t.Fatal(err)
		}
	}
	streams, audio := media.waitStopped(t)
	if len(streams) != 1 || streams[0].CallID != a || streams[0].StreamID != "32DE0DEA-53CB-4B21-89A4-9E1819C043BC" ||
		len(audio) != 1 || len(audio[0]) != 792 {
		t.Fatalf("streams %+v, %d audio frames", streams, len(audio))
	}
}
