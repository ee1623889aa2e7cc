package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserConsoleErrorsDrainsAndThisInstance: the admin console in Chromium. A wrong
// token's error goes as soon as the right token works (it used to stay on screen); draining a
// carrier shows as an event under "Recent failovers and breaker changes" (it showed nothing),
// and the breaker reads open for this instance too (it read closed); restoring shows as well.
func TestBrowserConsoleErrorsDrainsAndThisInstance(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	ctx := newBrowser(t, writeToneWAV(t, browserHz, 0.5, 1))
	p := page{t: t, ctx: ctx}
	status := `document.querySelector('[data-testid="status"]')`

	p.do("open the console", chromedp.Navigate(base+"/admin"))
	p.do("a wrong token", chromedp.SendKeys(tid("token-input"), "not-the-admin-token"), chromedp.Click(tid("token-save")))
	p.wait("the wrong token's error", status+`.className === 'err'`)
	p.do("the right token", chromedp.SendKeys(tid("token-input"), adminToken), chromedp.Click(tid("token-save")))
	p.wait("the error gone and the console live", status+`.className !== 'err' && `+status+`.textContent.startsWith('live')`)
	p.wait("the carriers", `document.querySelector('[data-testid="breaker-state-simtw"]') !== null`)

	cellText := func(id string) string { return `document.querySelector('[data-testid="` + id + `"]').textContent` }
	p.wait("closed before the drain", cellText("breaker-state-simtw")+` === 'closed' && `+cellText("breaker-local-simtw")+`.startsWith('closed')`)
	p.do("drain", chromedp.Click(tid("drain-simtw")))
	p.wait("drained everywhere, this instance included", cellText("breaker-state-simtw")+` === 'open' && `+
		cellText("breaker-force-simtw")+` === 'open' && `+cellText("breaker-local-simtw")+`.startsWith('open')`)
	forced := `[...document.querySelectorAll('[data-testid="event-breaker-forced"]')]`
	p.wait("the drain among the recent events", forced+`.some((r) => r.textContent.includes('simtw') && r.children[3].textContent === 'open')`)
	p.do("restore", chromedp.Click(tid("restore-simtw")))
	p.wait("restored", cellText("breaker-force-simtw")+` === 'auto' && `+cellText("breaker-local-simtw")+`.startsWith('closed')`)
	p.wait("the restore among the recent events", forced+`.some((r) => r.children[3].textContent === 'auto')`)
	p.wait("no error left on screen", status+`.className !== 'err'`)
}
