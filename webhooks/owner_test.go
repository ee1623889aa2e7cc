package webhooks

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

const otherTwilioToken = "another-carriers-token"

// TestForeignCarrierIsRefusedOnEveryRoute: carrier tw2 (and tx2) are configured and sign
// correctly, but the calls belong to tw (and tx). Every route answers 4xx, and nothing about
// the calls changes.
func TestForeignCarrierIsRefusedOnEveryRoute(t *testing.T) {
	pub2, priv2, _ := ed25519.GenerateKey(rand.Reader)
	media := &recordingMedia{stopped: make(chan struct{})}
	h := newHarness(t, redistest.URL(t), func(d *Deps) {
		d.Media = media
		dir := d.Carriers.(directory)
		dir["tw2"] = Credentials{Kind: KindTwilio, AuthToken: otherTwilioToken}
		dir["tx2"] = Credentials{Kind: KindTelnyx, PublicKey: pub2}
	})
	ctx := context.Background()
	owned := func(carrier, ccid string) string {
		id := store.NewCallID()
		if _, err := h.st.Apply(ctx, call.Event{ID: "placed", CallID: id, State: call.Queued, Direction: call.Outbound}); err != nil {
			t.Fatal(err)
		}
		if err := h.st.ClaimAttempt(ctx, id, carrier, 1); err != nil {
			t.Fatal(err)
		}
		if err := h.st.LinkAttempt(ctx, id, carrier, 1, ccid); err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.Apply(ctx, call.Event{ID: "ring", CallID: id, Carrier: carrier, CarrierCallID: ccid, State: call.Ringing}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	twSid, txID := "CA"+strings.Repeat("7a", 16), "v3:"+strings.Repeat("b", 20)
	twCall, txCall := owned("tw", twSid), owned("tx", txID)
	before := map[string]call.Call{}
	for _, id := range []string{twCall, txCall} {
		before[id], _ = h.st.Call(ctx, id)
	}

	foreignTwilio := func(path string, form url.Values) *http.Response {
		body := form.Encode()
		req, _ := http.NewRequest(http.MethodPost, h.http.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", SignTwilio(otherTwilioToken, h.http.URL+path, []byte(body)))
		return h.do(req)
	}
	foreignTelnyx := func(body []byte) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/webhooks/tx2/events", strings.NewReader(string(body)))
		stamp := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("Telnyx-Timestamp", stamp)
		req.Header.Set("Telnyx-Signature-Ed25519", SignTelnyx(priv2, stamp, body))
		return h.do(req)
	}
	clientState := base64.StdEncoding.EncodeToString([]byte(txCall))
	for _, c := range []struct {
		name string
		resp *http.Response
	}{
		{"status, our call id", foreignTwilio("/webhooks/tw2/status?sb_call="+twCall, statusForm(twSid, "completed", 5))},
		{"status, its own call sid", foreignTwilio("/webhooks/tw2/status?sb_call="+twCall+"&sb_attempt=1", statusForm("CA"+strings.Repeat("8b", 16), "completed", 1))},
		{"voice, inbound with our call id", foreignTwilio("/webhooks/tw2/voice?sb_call="+twCall,
			statusForm("CA"+strings.Repeat("9c", 16), "ringing", 0, "Direction", "inbound"))},
		{"voice, outbound answer", foreignTwilio("/webhooks/tw2/voice?sb_call="+twCall, statusForm(twSid, "in-progress", 2))},
		{"events, client_state", foreignTelnyx(signedTelnyxFixture("ev-f1", "call.hangup", "v3:"+strings.Repeat("c", 20), "outgoing",
			map[string]any{"client_state": clientState, "hangup_cause": "normal_clearing"}))},
		{"events, the owner's call control id", foreignTelnyx(signedTelnyxFixture("ev-f2", "call.answered", txID, "outgoing", nil))},
	} {
		if c.resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, c.resp.StatusCode)
		}
	}

	// Media: a Telnyx stream URL tokened for tx2 but naming tx's call is refused before the
	// upgrade; a Twilio stream signed by tw2 whose start names tw's call is closed at once.
	if _, resp, err := websocket.DefaultDialer.Dial(h.srv.TelnyxStreamURL("tx2", txCall), nil); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("telnyx media of a foreign call: %v %v", resp, err)
	}
	perCall := h.srv.TwilioStreamURL("tw2", twCall)
	if _, resp, err := websocket.DefaultDialer.Dial(perCall, http.Header{"X-Twilio-Signature": {SignTwilio(otherTwilioToken, perCall, nil)}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("twilio media on a foreign call's own path: %v %v", resp, err)
	}
	// The legacy carrier-wide path names the call only in its start frame.
	streamURL := strings.TrimSuffix(h.srv.TwilioStreamURL("tw2", ""), "/")
	conn, _, err := websocket.DefaultDialer.Dial(streamURL, http.Header{"X-Twilio-Signature": {SignTwilio(otherTwilioToken, streamURL, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ9","callSid":"`+twSid+
		`","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"sb_call":"`+twCall+`"}},"streamSid":"MZ9"}`))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var timeout net.Error
	if _, _, err := conn.ReadMessage(); err == nil || errors.As(err, &timeout) && timeout.Timeout() {
		t.Errorf("twilio media of a foreign call: the stream stayed open (%v)", err)
	}
	media.mu.Lock()
	if len(media.streams) != 0 {
		t.Errorf("a foreign stream reached the bridge: %+v", media.streams)
	}
	media.mu.Unlock()

	for id, was := range before {
		now, err := h.st.Call(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if now.State != was.State || now.Carrier != was.Carrier || now.CarrierCallID != was.CarrierCallID || len(now.History) != len(was.History) {
			t.Errorf("call %s changed: was %v %s/%s %d entries, now %v %s/%s %d entries", id, was.State, was.Carrier, was.CarrierCallID,
				len(was.History), now.State, now.Carrier, now.CarrierCallID, len(now.History))
		}
	}
	var foreign float64
	for _, l := range [][2]string{{"tw2", "status"}, {"tw2", "voice"}, {"tx2", "events"}, {"tx2", "media"}, {"tw2", "media"}} {
		foreign += counterValue(t, h.srv.d.Metrics.foreign.WithLabelValues(l[0], l[1]))
	}
	if foreign != 9 {
		t.Errorf("foreign requests counted: %v, want 9", foreign)
	}
	// The owners still get through.
	if r := h.twilio("/webhooks/tw/status?sb_call="+twCall+"&sb_attempt=1", statusForm(twSid, "in-progress", 2), true); r.StatusCode != http.StatusNoContent {
		t.Errorf("the owner's callback: %d", r.StatusCode)
	}
}

// orphanCatcher records what the webhooks ask to hang up.
type orphanCatcher chan string

func (o orphanCatcher) HangupOrphan(_ context.Context, _, carrier, ccid string) error {
	o <- carrier + " " + ccid
	return nil
}

// next waits up to 5 s for the next orphan handed over for hang-up and fails unless it is
// want ("carrier ccid"); what names the orphan in the failure.
func (o orphanCatcher) next(t *testing.T, want, what string) {
	t.Helper()
	select {
	case got := <-o:
		if got != want {
			t.Fatalf("hung up %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(what + " not handed over for hang-up")
	}
}

// givenUp stores a queued outbound call whose attempt 1, on carrier, was given up (the
// placer's timeout): that attempt's callbacks are an orphan's. It returns the call's id.
func (h *harness) givenUp(carrier string) string {
	h.t.Helper()
	ctx := context.Background()
	id := store.NewCallID()
	if _, err := h.st.Apply(ctx, call.Event{ID: "placed", CallID: id, State: call.Queued, Direction: call.Outbound}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.ClaimAttempt(ctx, id, carrier, 1); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.AbandonAttempt(ctx, id, carrier, 1); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// failingOrphans cannot store a hang-up until ok is set.
type failingOrphans struct {
	ok     atomic.Bool
	stored chan string
}

func (f *failingOrphans) HangupOrphan(_ context.Context, callID, carrier, ccid string) error {
	if !f.ok.Load() {
		return errors.New("store down")
	}
	f.stored <- callID + " " + carrier + " " + ccid
	return nil
}

// TestOrphanHangupNotStoredIs503: an orphan's callback is acknowledged only once its hang-up
// is stored. If it cannot be, the carrier gets 503; its retry, a duplicate of the stored
// event, stores the hang-up and gets 204.
func TestOrphanHangupNotStoredIs503(t *testing.T) {
	orphans := &failingOrphans{stored: make(chan string, 1)}
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Orphans = orphans })
	ctx := context.Background()
	id := h.givenUp("tw")
	orphan := "CA" + strings.Repeat("5f", 16)
	path := "/webhooks/tw/status?sb_call=" + id + "&sb_attempt=1"
	if r := h.twilio(path, statusForm(orphan, "ringing", 1), true); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("orphan's callback with its hang-up not stored: %d, want 503", r.StatusCode)
	}
	orphans.ok.Store(true)
	if r := h.twilio(path, statusForm(orphan, "ringing", 1), true); r.StatusCode != http.StatusNoContent {
		t.Fatalf("the retry: %d, want 204", r.StatusCode)
	}
	select {
	case got := <-orphans.stored:
		if got != id+" tw "+orphan {
			t.Fatalf("stored %q", got)
		}
	default:
		t.Fatal("the retry did not store the orphan's hang-up")
	}
	// A duplicate of the live carrier's event stores no orphan hang-up.
	id2 := store.NewCallID()
	h.st.Apply(ctx, call.Event{ID: "placed", CallID: id2, State: call.Queued, Direction: call.Outbound})
	h.st.ClaimAttempt(ctx, id2, "tw", 1)
	live := "CA" + strings.Repeat("6a", 16)
	for range 2 {
		if r := h.twilio("/webhooks/tw/status?sb_call="+id2+"&sb_attempt=1", statusForm(live, "ringing", 1), true); r.StatusCode != http.StatusNoContent {
			t.Fatalf("live callback: %d", r.StatusCode)
		}
	}
	select {
	case got := <-orphans.stored:
		t.Fatalf("a live call's callback stored an orphan hang-up: %q", got)
	default:
	}
}

func TestOrphanCallbacksAreKeptAndHungUp(t *testing.T) {
	orphans := make(orphanCatcher, 4)
	h := newHarness(t, redistest.URL(t), func(d *Deps) { d.Orphans = orphans })
	ctx := context.Background()
	// Attempt 1 went to tw and timed out; attempt 2 is on another carrier.
	id := h.givenUp("tw")
	h.st.ClaimAttempt(ctx, id, "tx", 2)
	h.st.LinkAttempt(ctx, id, "tx", 2, "v3:live")
	orphan := "CA" + strings.Repeat("4e", 16)

	if r := h.twilio("/webhooks/tw/status?sb_call="+id+"&sb_attempt=1", statusForm(orphan, "ringing", 1), true); r.StatusCode != http.StatusNoContent {
		t.Fatalf("orphan's status callback: %d", r.StatusCode)
	}
	r := h.twilio("/webhooks/tw/voice?sb_call="+id+"&sb_attempt=1", statusForm(orphan, "in-progress", 2), true)
	if doc := body(r); r.StatusCode != http.StatusOK || !strings.Contains(doc, "<Hangup/>") || strings.Contains(doc, "<Stream") {
		t.Fatalf("orphan's voice webhook: %d %s", r.StatusCode, doc)
	}
	for range 2 {
		orphans.next(t, "tw "+orphan, "orphan")
	}
	// A Telnyx attempt given up on: its webhooks name our call in client_state.
	id2 := h.givenUp("tx")
	late := "v3:" + strings.Repeat("d", 20)
	ev := signedTelnyxFixture("ev-o1", "call.answered", late, "outgoing",
		map[string]any{"client_state": base64.StdEncoding.EncodeToString([]byte(id2))})
	if r := h.telnyxPost("/webhooks/tx/events", ev, time.Now()); r.StatusCode != http.StatusNoContent {
		t.Fatalf("telnyx orphan's webhook: %d", r.StatusCode)
	}
	orphans.next(t, "tx "+late, "telnyx orphan")
	if c2, _ := h.st.Call(ctx, id2); c2.State != call.Queued || c2.CarrierCallID != "" {
		t.Fatalf("the telnyx orphan changed the record: %v %q", c2.State, c2.CarrierCallID)
	}

	c, _ := h.st.Call(ctx, id)
	if c.State != call.Queued || c.Carrier != "tx" || c.CarrierCallID != "v3:live" {
		t.Fatalf("the orphan changed the live record: %v %s/%s", c.State, c.Carrier, c.CarrierCallID)
	}
	last := c.History[len(c.History)-1]
	if last.Changed || !strings.HasPrefix(last.Detail, "orphan of attempt 1") {
		t.Fatalf("orphan's entry: %+v", last)
	}
}
