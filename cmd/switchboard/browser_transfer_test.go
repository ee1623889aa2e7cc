package main

import (
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
	d := newDeployment(t, 2, 0, nil, func(c *sim.Config) { c.WatchHz = transferHz })
	annBase, bobBase := d.instances[0].base, d.instances[1].base
	annToken := createAgent(t, annBase, "ann")
	bobToken := createAgent(t, annBase, "bob")
	ann := signIn(t, newBrowser(t, writeToneWAV(t, browserHz, 0.5, 20)), annBase, annToken)
	// Bob signs in after Ann: she has been idle longer, so the call rings her.
	bob := signIn(t, newBrowser(t, writeToneWAV(t, transferHz, 0.5, 20)), bobBase, bobToken)

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	ann.wait("the call ringing for ann", visible("incoming-panel"))
	ann.do("answer", chromedp.Click(tid("answer-button")))
	ann.wait("connected", dataState("call-state", "in-progress"))
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
