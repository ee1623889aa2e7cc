package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/carrier/sim"
)

// transferHz is the second agent's fake microphone: apart from the caller's 1000 Hz, the
// first agent's 440 Hz and the hold tone's 620 Hz.
const transferHz = 1800

// TestBrowserBlindTransfer: two agents in two Chromium pages, each with a microphone of its
// own tone, on two instances. Ann answers a call from the simulator and transfers it to Bob
// from her page; she is released at once and wraps up; Bob's page rings, he answers, and the
// simulated caller hears Bob's tone. The time from Ann's click to the caller hearing Bob
// (Bob's answer click included, made as soon as his page rings) is logged.
func TestBrowserBlindTransfer(t *testing.T) {
	d, ann, bob, sid := annAnswersBobWaits(t, 20)
	d.report(sid, "the caller hearing ann", func(r sim.Report) bool { return r.DominantHz == browserHz && r.DominantPower > 0.1 })
	ann.wait("the transfer control", visible("transfer-panel")+" && "+dataState("transfer-state", "idle"))

	ann.do("open the transfer", chromedp.Click(tid("transfer-button")))
	ann.wait("the target form", visible("transfer-form")+" && "+dataState("transfer-state", "choosing"))
	ann.do("type the target", chromedp.SendKeys(tid("transfer-target"), "bob"))
	clicked := time.Now()
	ann.do("transfer", chromedp.Click(tid("transfer-blind")))
	bob.wait("the call ringing for bob", visible("incoming-panel"))
	bob.do("bob answers", chromedp.Click(tid("answer-button")))
	r := d.report(sid, "the caller hearing bob", func(r sim.Report) bool { return r.ToneHeardAt.After(clicked) })
	t.Logf("the caller heard bob's %d Hz %v after ann's click (bob's answer included)", transferHz, r.ToneHeardAt.Sub(clicked).Round(time.Millisecond))

	ann.wait("ann released", `document.querySelector('[data-testid="call-panel"]').hidden`+" && "+
		dataState("transfer-state", "transferred")+" && "+
		`document.querySelector('[data-testid="transfer-state"]').textContent.includes('bob')`)
	ann.wait("ann wraps up", dataState("availability-state", "wrap-up"))
	bob.wait("bob connected", dataState("call-state", "in-progress"))
	bob.wait("bob hearing the caller",
		`window.switchboard.power(1000) > -40 && window.switchboard.power(1000) > window.switchboard.power(1800) + 20`)

	// A refusal shows on the page, and the call stays: ann is busy with nothing now, so bob
	// tries to hand it to an agent who does not exist.
	bob.do("open the transfer", chromedp.Click(tid("transfer-button")))
	bob.do("an unknown target", chromedp.SendKeys(tid("transfer-target"), "zed"), chromedp.Click(tid("transfer-blind")))
	bob.wait("the refusal", dataState("transfer-state", "refused")+" && "+visible("error-banner")+
		` && document.querySelector('[data-testid="error-message"]').textContent.includes('No such agent')`)
	bob.wait("still on the call", dataState("call-state", "in-progress"))
}

// annAnswersBobWaits is where each transfer test starts: two instances, ann signed in on the
// first and bob on the second, each in a Chromium page whose microphone plays a tone of its
// own for seconds; a simulated caller's call (sid) rings ann, who answers it.
func annAnswersBobWaits(t *testing.T, seconds int) (d *deployment, ann, bob page, sid string) {
	t.Helper()
	d = newDeployment(t, 2, 0, nil, func(c *sim.Config) { c.WatchHz = transferHz })
	annBase, bobBase := d.instances[0].base, d.instances[1].base
	annToken := createAgent(t, annBase, "ann")
	bobToken := createAgent(t, annBase, "bob")
	ann = signIn(t, newBrowser(t, writeToneWAV(t, browserHz, 0.5, seconds)), annBase, annToken)
	// Bob signs in after Ann: she has been idle longer, so the call rings her.
	bob = signIn(t, newBrowser(t, writeToneWAV(t, transferHz, 0.5, seconds)), bobBase, bobToken)

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	ann.wait("the call ringing for ann", visible("incoming-panel"))
	ann.do("answer", chromedp.Click(tid("answer-button")))
	ann.wait("connected", dataState("call-state", "in-progress"))
	return d, ann, bob, sid
}

// hearsOnly is a page condition: the page hears each tone of on (above -40 dB) and each tone
// of off at least 20 dB below the quietest of on.
func hearsOnly(on []float64, off ...float64) string { return tonesHeard("switchboard", on, off...) }

// tonesHeard is the condition that the audio whose meter is window.<meter> carries each tone
// of on (above -40 dB) and each of off at least 20 dB below the quietest of on.
func tonesHeard(meter string, on []float64, off ...float64) string {
	expr := "(() => { const p = (hz) => window." + meter + ".power(hz); const on = Math.min("
	for i, hz := range on {
		if i > 0 {
			expr += ", "
		}
		expr += fmt.Sprintf("p(%v)", hz)
	}
	expr += "); return on > -40"
	for _, hz := range off {
		expr += fmt.Sprintf(" && p(%v) < on - 20", hz)
	}
	return expr + "; })()"
}

// TestBrowserWarmTransferAndConference: Ann consults Bob from her page (the caller on hold
// hears neither), brings the caller in (a conference: each page hears the other two tones
// and not its own), then completes the transfer: she is released, and the caller hears Bob.
func TestBrowserWarmTransferAndConference(t *testing.T) {
	d, ann, bob, sid := annAnswersBobWaits(t, 30)

	ann.do("open the transfer", chromedp.Click(tid("transfer-button")))
	ann.do("consult bob", chromedp.SendKeys(tid("transfer-target"), "bob"), chromedp.Click(tid("transfer-warm")))
	ann.wait("bob being called", dataState("transfer-state", "ringing")+" && "+visible("transfer-actions"))
	bob.wait("bob rung to consult", visible("incoming-panel"))
	bob.do("bob answers", chromedp.Click(tid("answer-button")))
	ann.wait("consulting", dataState("transfer-state", "consulting"))
	ann.wait("ann hearing bob, not the caller", hearsOnly([]float64{transferHz}, simulatorHz))
	bob.wait("bob hearing ann, not the caller", hearsOnly([]float64{browserHz}, simulatorHz))

	ann.do("conference", chromedp.Click(tid("transfer-conference")))
	ann.wait("the conference", dataState("transfer-state", "conference"))
	ann.wait("ann hearing the caller and bob, not herself", hearsOnly([]float64{simulatorHz, transferHz}, browserHz))
	bob.wait("bob hearing the caller and ann, not himself", hearsOnly([]float64{simulatorHz, browserHz}, transferHz))
	for _, p := range []struct {
		name string
		p    page
	}{{"ann", ann}, {"bob", bob}} {
		t.Logf("%s's page in the conference: %.1f dB at 1000 Hz, %.1f dB at 440 Hz, %.1f dB at 1800 Hz", p.name,
			p.p.eval(`window.switchboard.power(1000)`), p.p.eval(`window.switchboard.power(440)`), p.p.eval(`window.switchboard.power(1800)`))
	}

	completed := time.Now()
	ann.do("complete", chromedp.Click(tid("transfer-complete")))
	ann.wait("ann released", `document.querySelector('[data-testid="call-panel"]').hidden && `+dataState("transfer-state", "transferred"))
	ann.wait("ann wraps up", dataState("availability-state", "wrap-up"))
	bob.wait("bob hearing only the caller", hearsOnly([]float64{simulatorHz}, browserHz))
	// Bob's tone alone passes the simulator's tone watch (mixed with Ann's it need not).
	d.report(sid, "the caller hearing bob alone", func(r sim.Report) bool { return r.ToneHeardAt.After(completed.Add(500 * time.Millisecond)) })
	bob.do("bob hangs up", chromedp.Click(tid("hangup-button")))
	d.report(sid, "the call over", func(r sim.Report) bool { return r.Status == "completed" })
}
