package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
)

// The softphone end to end: Debian's headless Chromium (driven by chromedp, which never
// downloads a browser) opens the page from the binary, signs in, and places and takes calls
// through the carrier simulator. Its microphone is a fake device playing a 440 Hz WAV made
// here; the simulator sends 1000 Hz. Everything stays on 127.0.0.1.

// Tone frequencies each way: different, so a crossed or looped-back stream cannot pass.
const (
	browserHz   = 440  // the agent's fake microphone
	simulatorHz = 1000 // the far end
)

// writeToneWAV writes seconds of a sine at hz, 48 kHz mono 16-bit PCM, at amplitude (0..1).
func writeToneWAV(t *testing.T, hz, amplitude float64, seconds int) string {
	t.Helper()
	const rate = 48000
	n := rate * seconds
	data := make([]byte, 44+2*n)
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*n))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)     // fmt chunk size
	binary.LittleEndian.PutUint16(data[20:], 1)      // PCM
	binary.LittleEndian.PutUint16(data[22:], 1)      // mono
	binary.LittleEndian.PutUint32(data[24:], rate)   // sample rate
	binary.LittleEndian.PutUint32(data[28:], rate*2) // byte rate
	binary.LittleEndian.PutUint16(data[32:], 2)      // block align
	binary.LittleEndian.PutUint16(data[34:], 16)     // bits per sample
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*n))
	for i := range n {
		s := int16(amplitude * 32767 * math.Sin(2*math.Pi*hz*float64(i)/rate))
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(s))
	}
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newBrowser starts a headless Chromium whose microphone plays wav; the test's cleanup stops it.
func newBrowser(t *testing.T, wav string) context.Context {
	t.Helper()
	return startBrowser(t, wav, true)
}

// startBrowser starts Chromium with a fake microphone playing wav; granted says whether the
// microphone is granted without asking (otherwise the page gets what the permission says).
func startBrowser(t *testing.T, wav string, granted bool) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		// The machine has no network beyond loopback: no background traffic, nothing to update.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// A granted microphone that plays the WAV, and audio that plays without a gesture.
		chromedp.Flag("use-fake-ui-for-media-stream", granted),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// ICE candidates on 127.0.0.1, where the server listens; without the flag Chromium
		// gathers none on loopback. The feature list keeps chromedp's defaults: Flag replaces.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	)
	if path := os.Getenv("CHROMIUM"); path != "" {
		opts = append(opts, chromedp.ExecPath(path))
	}
	// Start the browser now, so a missing Chromium fails here with a clear message. A start
	// that fails on a machine busy with other work is tried again, with a fresh profile.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, chromedp.UserDataDir(t.TempDir()))...)
		ctx, cancel := chromedp.NewContext(actx)
		if err = chromedp.Do(ctx, chromedp.Navigate("about:blank")); err == nil {
			t.Cleanup(func() {
				cancel()
				cancelAlloc()
			})
			return ctx
		}
		cancel()
		cancelAlloc()
		if _, lookErr := exec.LookPath("chromium"); lookErr != nil && os.Getenv("CHROMIUM") == "" {
			break
		}
		t.Logf("Chromium did not start (attempt %d): %v", attempt, err)
	}
	t.Fatalf("start Chromium (install Debian's chromium: apt-get install -y chromium; .ci/deps does it): %v", err)
	return nil
}

func tid(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// page drives the softphone in one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v (page: %s)", what, err, p.state())
	}
}

// wait polls a JavaScript condition in the page until it holds.
func (p page) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting for %s: %v (page: %s)", what, err, p.state())
	}
}

func (p page) eval(expr string) float64 {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[float64](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// state describes what the page shows, for failure messages.
func (p page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		connection: document.querySelector('[data-testid="connection-state"]').dataset.state,
		error: document.querySelector('[data-testid="error-banner"]').hidden ? '' : document.querySelector('[data-testid="error-message"]').textContent,
		phone: window.switchboard && window.switchboard.snapshot(), peer: window.switchboard && window.switchboard.peerState()})`))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return s
}

func visible(id string) string {
	return fmt.Sprintf(`!document.querySelector('[data-testid="%s"]').hidden`, id)
}

func dataState(id, state string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid="%s"]').dataset.state === %q`, id, state)
}

// signInAnn creates agent ann on the instance at base and signs her in from a new Chromium
// page whose microphone plays wav.
func signInAnn(t *testing.T, base, wav string) page {
	t.Helper()
	token := createAgent(t, base, "ann")
	return signIn(t, newBrowser(t, wav), base, token)
}

// signIn opens the softphone at base and signs in with token; it returns once the agent is
// available and its audio connection is up.
func signIn(t *testing.T, ctx context.Context, base, token string) page {
	t.Helper()
	p := page{t: t, ctx: ctx}
	// ?raw: no echo cancellation, noise suppression or gain control, so the tone arrives as sent.
	p.do("open the softphone", chromedp.Navigate(base+"/agent?raw"))
	p.do("sign in",
		chromedp.SendKeys(tid("login-token"), token),
		chromedp.Click(tid("login-submit")))
	p.wait("the desk", visible("desk-panel"))
	p.wait("connected", dataState("connection-state", "connected"))
	p.wait("available", dataState("availability-state", "available"))
	p.wait("audio connected", `window.switchboard.peerState() === 'connected'`)
	p.wait("no error on screen", `getComputedStyle(document.querySelector('[data-testid="error-banner"]')).display === 'none'`)
	return p
}

// hears reports the page's received level at hz and at the other tone, in dB.
func (p page) hears(hz, other float64) (at, off float64) {
	return p.eval(fmt.Sprintf(`window.switchboard.power(%v)`, hz)), p.eval(fmt.Sprintf(`window.switchboard.power(%v)`, other))
}

// TestBrowserPlacesACallAndAudioCrossesBothWays: an agent signs in, dials the simulator from
// the dial pad, and the simulator hears the browser's 440 Hz while the page hears the
// simulator's 1000 Hz; muting silences the agent at the simulator; hanging up ends the call.
func TestBrowserPlacesACallAndAudioCrossesBothWays(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	token := createAgent(t, base, "ann")
	ctx := newBrowser(t, writeToneWAV(t, browserHz, 0.5, 10))
	start := time.Now()
	p := signIn(t, ctx, base, token)

	p.do("dial", chromedp.SendKeys(tid("dial-number"), "+15551230000"), chromedp.Click(tid("dial-button")))
	p.wait("the call panel", visible("call-panel"))
	p.wait("the far end answering", dataState("call-state", "in-progress"))
	sid := d.simCall("outbound")
	r := d.report(sid, "the simulator hearing the browser's 440 Hz", func(r sim.Report) bool {
		return r.BytesReceived >= 8000 && r.DominantHz == browserHz && r.DominantPower > 0.05
	})
	t.Logf("the simulator hears the browser: %v Hz at Goertzel power %.3f (frames lost %d)", r.DominantHz, r.DominantPower, r.FramesLost)
	p.wait("the page hearing the simulator's 1000 Hz",
		`window.switchboard.power(1000) > -40 && window.switchboard.power(1000) > window.switchboard.power(440) + 20`)
	at, off := p.hears(simulatorHz, browserHz)
	t.Logf("the page hears the simulator: %.1f dB at %v Hz, %.1f dB at %v Hz", at, float64(simulatorHz), off, float64(browserHz))

	p.do("mute", chromedp.Click(tid("mute-button")))
	p.wait("muted", `document.querySelector('[data-testid="mute-button"]').getAttribute('aria-pressed') === 'true'`)
	// The simulator reports the middle 200 ms of what it recorded: once the call has been
	// muted for longer than it was not, the middle is muted audio.
	r = d.report(sid, "the simulator hearing silence", func(r sim.Report) bool { return r.DominantPower < 0.0001 })
	t.Logf("muted, the simulator hears power %.5f (%v Hz)", r.DominantPower, r.DominantHz)

	p.do("hang up", chromedp.Click(tid("hangup-button")))
	p.wait("the call over", `document.querySelector('[data-testid="call-panel"]').hidden`)
	d.report(sid, "the simulator's call completed", func(r sim.Report) bool { return r.Status == "completed" })
	p.wait("the call in the log", `document.querySelector('[data-testid="call-log"]').textContent.includes('You hung up')`)
	t.Logf("browser test took %v", time.Since(start))
}

// TestBrowserAnswersAnInboundCall: a call from the simulator rings the page, which answers it
// with a click; audio crosses both ways; the caller hangs up.
func TestBrowserAnswersAnInboundCall(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	p := signInAnn(t, base, writeToneWAV(t, browserHz, 0.5, 10))

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	p.wait("the call ringing", visible("incoming-panel"))
	p.wait("the caller's number", `document.querySelector('[data-testid="incoming-from"]').textContent === '+15557654321'`)
	p.do("answer", chromedp.Click(tid("answer-button")))
	p.wait("connected", dataState("call-state", "in-progress"))
	p.wait("the page hearing the caller",
		`window.switchboard.power(1000) > -40 && window.switchboard.power(1000) > window.switchboard.power(440) + 20`)
	at, off := p.hears(simulatorHz, browserHz)
	t.Logf("the page hears the caller: %.1f dB at 1000 Hz, %.1f dB at 440 Hz", at, off)
	r := d.report(sid, "the caller hearing the browser", func(r sim.Report) bool {
		return r.DominantHz == browserHz && r.DominantPower > 0.2
	})
	t.Logf("the caller hears the browser: %v Hz at power %.3f", r.DominantHz, r.DominantPower)

	if err := d.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	p.wait("the call over", `document.querySelector('[data-testid="call-panel"]').hidden`)
	p.wait("wrap-up", dataState("availability-state", "wrap-up"))
}

// TestBrowserShowsClearErrors: a number the carrier refuses shows a carrier failure, a
// malformed number says how to write it, and a server that goes away shows the lost
// connection while the page reconnects.
func TestBrowserShowsClearErrors(t *testing.T) {
	d := newDeployment(t, 1, 0, map[string]string{"SWITCHBOARD_DRAIN_TIMEOUT": "1s"})
	base := d.instances[0].base
	p := signInAnn(t, base, writeToneWAV(t, browserHz, 0.5, 10))

	// The simulator refuses numbers ending in 3 as invalid.
	p.do("dial", chromedp.SendKeys(tid("dial-number"), "+15551230003"), chromedp.Click(tid("dial-button")))
	p.wait("the carrier failure", visible("error-banner")+
		` && document.querySelector('[data-testid="error-message"]').textContent.includes('could not be placed')`)
	p.wait("available again", dataState("availability-state", "available"))
	p.do("a malformed number", chromedp.SendKeys(tid("dial-number"), "x"), chromedp.Click(tid("dial-button")))
	p.wait("the number hint", `document.querySelector('[data-testid="error-message"]').textContent.includes('country code')`)

	s := d.instances[0]
	s.stop()
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	s.done <- nil // for the cleanup
	p.wait("the lost connection", dataState("connection-state", "reconnecting")+
		` && document.querySelector('[data-testid="error-message"]').textContent.includes('Connection lost')`)
}

// TestBrowserMicrophoneDenied: with the microphone permission denied the page says so, and
// still signs in (the agent can hear, and knows why callers cannot hear it).
func TestBrowserMicrophoneDenied(t *testing.T) {
	s := start(t, map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": redistest.Namespace(t)})
	token := createAgent(t, s.base, "ann")
	p := page{t: t, ctx: startBrowser(t, writeToneWAV(t, browserHz, 0.5, 2), false)}
	p.do("deny the microphone", func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "microphone"}, Setting: browser.PermissionSettingDenied, Origin: s.base})
		return chromedp.Void{}, err
	})
	p.do("open the softphone", chromedp.Navigate(s.base+"/agent"))
	p.do("sign in", chromedp.SendKeys(tid("login-token"), token), chromedp.Click(tid("login-submit")))
	p.wait("the microphone error", `document.querySelector('[data-testid="error-message"]').textContent.includes('Microphone access was denied')`)
	p.wait("signed in anyway, to listen", dataState("connection-state", "connected"))
}

// TestBrowserReloadKeepsTheCall: the agent reloads the page mid-call; the page signs in again
// by itself, finds the call in the welcome, renegotiates its audio and hears the far end again.
func TestBrowserReloadKeepsTheCall(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	p := signInAnn(t, base, writeToneWAV(t, browserHz, 0.5, 10))
	p.do("dial", chromedp.SendKeys(tid("dial-number"), "+15551230000"), chromedp.Click(tid("dial-button")))
	p.wait("the far end answering", dataState("call-state", "in-progress"))

	p.do("reload", chromedp.Reload())
	p.wait("the call back after the reload", visible("call-panel")+" && "+dataState("call-state", "in-progress"))
	p.wait("audio again", `window.switchboard.peerState() === 'connected' && window.switchboard.power(1000) > -40`)
	at, off := p.hears(simulatorHz, browserHz)
	t.Logf("after the reload the page hears %.1f dB at 1000 Hz, %.1f dB at 440 Hz", at, off)
	sid := d.simCall("outbound")
	if r, _ := d.sim.CallReport(sid); r.Status != "in-progress" {
		t.Fatalf("the reload ended the call: %+v", r)
	}
	p.do("hang up", chromedp.Click(tid("hangup-button")))
	d.report(sid, "the simulator's call completed", func(r sim.Report) bool { return r.Status == "completed" })
}
