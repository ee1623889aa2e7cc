package main

import (
	"net/http"
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

// TestBrowserConsoleCarrierForm: an admin adds a carrier in the console; the server's field
// errors show beside their fields; the fixed carrier is saved, edited (the stored secret kept),
// disabled; the route dry run answers; the audit view lists the changes.
func TestBrowserConsoleCarrierForm(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	ctx := newBrowser(t, writeToneWAV(t, browserHz, 0.5, 1))
	p := page{t: t, ctx: ctx}
	field := func(name string) chromedp.CSS { return tid("carrier-field-" + name) }
	errorBeside := func(name string) string {
		return `document.querySelector('.field[data-field="` + name + `"] [data-testid="field-error"]') !== null`
	}

	p.do("open the console", chromedp.Navigate(base+"/admin"))
	p.do("sign in", chromedp.SendKeys(tid("token-input"), adminToken), chromedp.Click(tid("token-save")))
	p.wait("the carriers", `document.querySelector('[data-testid="carrier-row-simtw"]') !== null`)

	p.do("a new carrier with two mistakes", chromedp.Click(tid("carrier-add")),
		chromedp.SendKeys(field("id"), "backup"), chromedp.SendKeys(field("from"), "5550001111"),
		chromedp.SetValue(field("weight"), "5000"), chromedp.SendKeys(field("account_sid"), "AC0123"),
		chromedp.SendKeys(field("auth_token"), "backup-secret"), chromedp.Click(tid("carrier-save")))
	p.wait("each error beside its field", errorBeside("from")+` && `+errorBeside("weight")+
		` && document.querySelectorAll('[data-testid="field-error"]').length === 2`)
	var saved map[string]any
	if code := request(t, http.MethodGet, base+"/api/admin/carriers/backup", adminToken, nil, &saved); code != http.StatusNotFound {
		t.Fatalf("an invalid carrier was stored: %d %v", code, saved)
	}

	p.do("fixed", chromedp.SetValue(field("from"), "+15550001111"), chromedp.SetValue(field("weight"), "2"),
		chromedp.Click(tid("carrier-save")))
	p.wait("saved and listed", `document.querySelector('[data-testid="carrier-form"]').hidden && `+
		`document.querySelector('[data-testid="enabled-backup"]')?.textContent === 'yes'`)

	p.do("edit two more fields", chromedp.Click(tid("edit-backup")),
		chromedp.SetValue(field("request_timeout"), "3s"), chromedp.SetValue(field("breaker.failure_threshold"), "7"),
		chromedp.Click(tid("carrier-save")))
	p.wait("the edit saved", `document.querySelector('[data-testid="carrier-form"]').hidden`)
	var got struct {
		RequestTimeout string `json:"request_timeout"`
		Weight         int    `json:"weight"`
		HasAuthToken   bool   `json:"has_auth_token"`
		Breaker        struct {
			FailureThreshold int `json:"failure_threshold"`
		} `json:"breaker"`
	}
	if code := request(t, http.MethodGet, base+"/api/admin/carriers/backup", adminToken, nil, &got); code != http.StatusOK ||
		got.RequestTimeout != "3s" || got.Breaker.FailureThreshold != 7 || got.Weight != 2 || !got.HasAuthToken {
		t.Fatalf("after the edit: %d %+v", code, got)
	}

	p.do("disable", chromedp.Click(tid("disable-backup")))
	p.wait("disabled", `document.querySelector('[data-testid="enabled-backup"]')?.textContent === 'no'`)

	p.do("route dry run", chromedp.SendKeys(tid("route-to"), "+15551230000"), chromedp.Click(tid("route-run")))
	p.wait("the dry run names the simulated carrier", `document.querySelector('[data-testid="route-result"]').dataset.carrier === 'simtw'`)
	p.do("a bad number", chromedp.SetValue(tid("route-to"), "12"), chromedp.Click(tid("route-run")))
	p.wait("the dry run refuses it", `document.querySelector('[data-testid="route-result"]').className === 'err'`)

	p.wait("the audit view lists the changes", `[...document.querySelectorAll('[data-testid="audit-entry"]')]`+
		`.filter((r) => r.dataset.action.startsWith('carrier.') && r.textContent.includes('backup')).length >= 3`)
}
