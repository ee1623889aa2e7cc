package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/carrier/sim"
)

// The agent's desk in Chromium: hold shown everywhere, the availability control agreeing with
// the badge, the wrap-up saved from the page and shown by the API, the call log's durations
// and redial, the keyboard shortcuts, the device pickers and the microphone's level meter.

// text is the textContent of the element with test id id, as a JavaScript expression.
func text(id string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid="%s"]').textContent`, id)
}

// agrees is the condition that the availability control says what the badge says.
const agrees = `(() => {
	const badge = document.querySelector('[data-testid="availability-state"]');
	const sel = document.querySelector('[data-testid="availability-select"]');
	return sel.value === badge.dataset.state && sel.selectedOptions[0].textContent.startsWith(badge.textContent);
})()`

// choose picks value in the select with test id id, as the agent does: the value, then the
// change event. (chromedp.SetValue reads the value back, and the availability control shows
// the agent's state again as soon as the choice is sent.)
func choose(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const sel = document.querySelector('[data-testid="%s"]');
		sel.value = %q;
		sel.dispatchEvent(new Event('change', {bubbles: true}));
	})()`, id, value))
}

// altKey presses Alt+key (a real key event, through the DevTools protocol) on the focused element.
func altKey(key string) chromedp.Action[chromedp.Void] {
	return chromedp.KeyEvent(key, chromedp.KeyModifiers(chromedp.ModifierAlt))
}

// TestBrowserWrapUpHoldAndCallLog: a call rings and the agent answers it with Alt+A; hold
// shows "On hold" on the call and on the badge; the availability control agrees with the
// badge before, through and after the call, also once the agent asks to be away after it;
// Alt+H typed in the notes does not hang up; the caller hangs up, the agent writes notes,
// picks a disposition and saves; the API shows them; the call log entry has the talk time
// in whole seconds and the disposition, and its redial button places a call to the number,
// which Alt+H hangs up.
func TestBrowserWrapUpHoldAndCallLog(t *testing.T) {
	d := newDeployment(t, 1, 0, map[string]string{"SWITCHBOARD_WRAP_UP": "3s",
		"SWITCHBOARD_DISPOSITIONS": "resolved,follow-up,spam"})
	base := d.instances[0].base
	p := signInAnn(t, base, writeToneWAV(t, browserHz, 0.5, 10))
	p.wait("the control agrees while available", agrees)
	p.wait("the dispositions from the server", `[...document.querySelector('[data-testid="wrapup-disposition"]').options].map(o => o.value).join() === ',resolved,follow-up,spam'`)
	p.wait("the shortcuts shown", text("shortcuts")+`.includes('Alt+A') && `+text("hangup-button")+`.includes('Alt+H')`)

	const caller = "+15557654320" // the simulator answers numbers ending in 0 (redial)
	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: caller})
	if err != nil {
		t.Fatal(err)
	}
	p.wait("the call ringing", visible("incoming-panel"))
	p.do("answer with Alt+A", altKey("a"))
	p.wait("connected", dataState("call-state", "in-progress"))
	p.wait("busy, and the control agrees", dataState("availability-state", "busy")+" && "+agrees)
	answered := time.Now()

	p.do("hold", chromedp.Click(tid("hold-button")))
	p.wait("on hold on the call", dataState("call-state", "on-hold")+" && "+text("call-state")+` === 'On hold'`)
	p.wait("on hold on the badge, and the control agrees", text("availability-state")+` === 'On hold' && `+agrees)
	p.do("resume", chromedp.Click(tid("hold-button")))
	p.wait("connected again", dataState("call-state", "in-progress")+" && "+text("availability-state")+` === 'On a call'`)

	p.do("away after this call", choose("availability-select", "away"))
	p.wait("asked for away, still on a call", dataState("availability-state", "busy")+` && `+agrees+
		` && document.querySelector('[data-testid="availability-select"]').selectedOptions[0].textContent.includes('Away after this call')`+
		` && `+text("availability-detail")+`.includes('Away after this call')`)

	// Typing in the notes during the call: Alt+H there is the agent's text, not a hang-up.
	// The mute that follows travels the same socket after it, so once the mute is back the
	// hang-up, had it been sent, would have ended the call first.
	p.wait("the wrap-up panel during the call", visible("wrapup-panel"))
	p.do("Alt+H in the notes", chromedp.Click(tid("wrapup-notes")), altKey("h"), chromedp.Click(tid("mute-button")))
	p.wait("muted, and still connected", `document.querySelector('[data-testid="mute-button"]').getAttribute('aria-pressed') === 'true' && `+
		dataState("call-state", "in-progress"))
	p.do("unmute", chromedp.Click(tid("mute-button")))
	p.wait("two seconds of talk", text("call-timer")+` >= '0:02'`)

	if err := d.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	p.wait("the call over", `document.querySelector('[data-testid="call-panel"]').hidden`)
	talk := time.Since(answered)
	p.wait("wrap-up, and the control agrees", dataState("availability-state", "wrap-up")+" && "+agrees)

	// The agent writes, reloads the page by mistake, and finds the notes where it left them.
	notes := "Wants a refund for order 1234; call back Monday."
	p.do("write the notes", chromedp.SendKeys(tid("wrapup-notes"), notes))
	p.do("reload", chromedp.Reload())
	p.wait("signed in again", dataState("connection-state", "connected"))
	p.wait("the wrap-up and its notes after the reload", visible("wrapup-panel")+` && document.querySelector('[data-testid="wrapup-notes"]').value === `+
		fmt.Sprintf("%q", notes))
	p.do("choose and save", choose("wrapup-disposition", "follow-up"), chromedp.Click(tid("wrapup-save")))
	p.wait("saved", dataState("wrapup-status", "saved"))

	callID := p.evalString(`window.switchboard.snapshot().wrap.call_id`)
	var got struct {
		Notes, Disposition, WrappedUpBy string
		WrappedUpAt                     time.Time `json:"wrapped_up_at"`
	}
	var raw map[string]any
	if code := request(t, http.MethodGet, base+"/api/calls/"+callID, adminToken, nil, &raw); code != http.StatusOK {
		t.Fatalf("GET the call: %d %v", code, raw)
	}
	got.Notes, _ = raw["notes"].(string)
	got.Disposition, _ = raw["disposition"].(string)
	got.WrappedUpBy, _ = raw["wrapped_up_by"].(string)
	if got.Notes != notes || got.Disposition != "follow-up" || got.WrappedUpBy != "agent:ann" || raw["wrapped_up_at"] == nil {
		t.Fatalf("the API shows %v, want the notes and disposition the page saved", raw)
	}

	entry := `document.querySelector('[data-testid="call-log-entry"]')`
	p.wait("the call in the log with its disposition", entry+` && `+entry+`.dataset.disposition === 'follow-up' && `+entry+`.dataset.callId === '`+callID+`'`)
	duration := p.eval(`Number(` + entry + `.dataset.duration)`)
	t.Logf("talk time %.1f s (test's clock, from the answer to the end); the log says %v s", talk.Seconds(), duration)
	if duration < 2 || math.Abs(duration-talk.Seconds()) > 1.5 {
		t.Fatalf("the log's duration %v s is not the talk time (about %.1f s)", duration, talk.Seconds())
	}
	if n := p.evalString(entry + `.dataset.number`); n != caller {
		t.Fatalf("the log names %q, want %s", n, caller)
	}

	p.wait("away after the wrap-up, and the control agrees", dataState("availability-state", "away")+" && "+agrees)

	// Redial from the log: the number goes out through the simulator; Alt+H hangs it up.
	p.do("redial", chromedp.Click(`[data-testid="call-log-entry"] [data-testid="call-log-redial"]`))
	p.wait("the redialled call connected", dataState("call-state", "in-progress")+` && `+text("call-peer")+` === '`+caller+`'`)
	out := d.simCall("outbound")
	if r, _ := d.sim.CallReport(out); r.To != caller {
		t.Fatalf("the redial called %q, want %s", r.To, caller)
	}
	p.do("hang up with Alt+H", chromedp.Click("body"), altKey("h"))
	d.report(out, "the redialled call completed", func(r sim.Report) bool { return r.Status == "completed" })
	p.wait("two calls in the log", `document.querySelectorAll('[data-testid="call-log-entry"]').length === 2`)
}

// TestBrowserDevicesAndMicLevel: the microphone and speaker pickers list Chromium's fake
// devices; the level meter follows the fake microphone, which plays a tone and then silence
// in turn; on a call, choosing another microphone puts it on the call's sender (the far end
// still hears the agent) and the meter follows it; choosing another speaker moves the call's
// audio there.
func TestBrowserDevicesAndMicLevel(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	p := signInAnn(t, base, writeToneThenSilenceWAV(t, browserHz, 0.5))

	p.wait("microphones listed", `document.querySelector('[data-testid="device-mic"]').options.length >= 1 && !document.querySelector('[data-testid="device-mic"]').disabled`)
	mics := p.evalString(`[...document.querySelector('[data-testid="device-mic"]').options].map(o => o.textContent).join(' | ')`)
	speakers := p.evalString(`[...document.querySelector('[data-testid="device-speaker"]').options].map(o => o.textContent).join(' | ')`)
	t.Logf("microphones: %s; speakers: %s", mics, speakers)
	if !strings.Contains(strings.ToLower(mics), "fake") {
		t.Fatalf("the microphone picker lists %q, want Chromium's fake devices", mics)
	}
	if speakers == "" {
		t.Fatal("the speaker picker is empty")
	}

	level := `Number(document.querySelector('[data-testid="mic-level"]').dataset.level)`
	p.wait("the meter up with the tone", level+` > 0.1`)
	p.wait("the meter down with the silence", level+` < 0.01`)
	p.wait("the meter up again", level+` > 0.1`)
	t.Logf("meter with the tone: reaches above 0.1 (a 0.5 sine has an RMS of 0.35); with silence below 0.01")

	// On a call, another microphone goes onto the call's sender without renegotiating, and
	// the far end still hears the agent; the meter follows the new one.
	if n := p.eval(`document.querySelector('[data-testid="device-mic"]').options.length`); n < 2 {
		t.Fatalf("%v microphones listed, want Chromium's three fake ones", n)
	}
	p.do("dial", chromedp.SendKeys(tid("dial-number"), "+15551230000"), chromedp.Click(tid("dial-button")))
	p.wait("the far end answering", dataState("call-state", "in-progress"))
	sid := d.simCall("outbound")
	p.wait("audio connected", `window.switchboard.peerState() === 'connected'`)
	before := p.evalString(`window.switchboard.sendingDevice()`)
	heardBefore, _ := d.sim.CallReport(sid)
	p.do("another microphone", chromedp.Evaluate[chromedp.Void](`(() => {
		const sel = document.querySelector('[data-testid="device-mic"]');
		sel.selectedIndex = (sel.selectedIndex + 1) % sel.options.length;
		window.chosenMic = sel.value;
		sel.dispatchEvent(new Event('change'));
	})()`))
	p.wait("the call sending the new microphone", `window.switchboard.sendingDevice() === window.chosenMic && `+
		`document.querySelector('[data-testid="device-mic"]').value === window.chosenMic`)
	after := p.evalString(`window.switchboard.sendingDevice()`)
	t.Logf("the call's sender moved from microphone %.12s… to %.12s…", before, after)
	if before == after {
		t.Fatal("the call still sends the first microphone")
	}
	if p.evalString(`window.switchboard.peerState()`) != "connected" {
		t.Fatal("switching the microphone dropped the audio connection")
	}
	p.wait("the meter down with the silence", level+` < 0.01`)
	p.wait("the meter follows the new microphone", level+` > 0.1`)
	// The simulator reports the middle 200 ms of what it received: once it has received
	// twice what it had at the switch and a little more, that middle is after the switch.
	// (This tone-and-silence WAV reaches it at power 0.06, against 0.25 for the steady tone
	// of the other tests; silence is 0.0000.)
	r := d.report(sid, "the far end hearing the agent's 440 Hz after the switch", func(r sim.Report) bool {
		return r.BytesReceived >= 2*heardBefore.BytesReceived+3200 && r.DominantHz == browserHz && r.DominantPower > 0.02
	})
	t.Logf("after the switch the far end hears %v Hz at power %.3f (%d bytes then, %d now)", r.DominantHz, r.DominantPower,
		heardBefore.BytesReceived, r.BytesReceived)

	// Another speaker: the call's audio element plays there.
	p.do("another speaker", chromedp.Evaluate[chromedp.Void](`(() => {
		const sel = document.querySelector('[data-testid="device-speaker"]');
		sel.selectedIndex = (sel.selectedIndex + 1) % sel.options.length;
		window.chosenSpeaker = sel.value;
		sel.dispatchEvent(new Event('change'));
	})()`))
	p.wait("the audio on the chosen speaker", `document.querySelector('[data-testid="remote-audio"]').sinkId === window.chosenSpeaker`)
	p.do("hang up", chromedp.Click(tid("hangup-button")))
	d.report(sid, "the call completed", func(r sim.Report) bool { return r.Status == "completed" })
}

// writeToneThenSilenceWAV writes one second of a sine at hz and one of silence, 48 kHz mono
// 16-bit PCM; Chromium's fake capture loops it.
func writeToneThenSilenceWAV(t *testing.T, hz, amplitude float64) string {
	t.Helper()
	src, err := os.ReadFile(writeToneWAV(t, hz, amplitude, 2))
	if err != nil {
		t.Fatal(err)
	}
	n := (len(src) - 44) / 2
	for i := n / 2; i < n; i++ {
		binary.LittleEndian.PutUint16(src[44+2*i:], 0)
	}
	path := filepath.Join(t.TempDir(), "tone-silence.wav")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p page) evalString(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}
