package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestBrowserHistoryAndCharts: the console's history and charts in Chromium, on a real
// instance with the simulated carrier. A call placed and hung up through the carrier gives a
// record with a carrier attempt and callbacks; two more records are stored directly. The
// search narrows the rows; both exports download (their Blob is checked in the page); the
// placed call's page shows its attempt and its timeline with each entry's source; the
// callbacks chart has points for the carrier.
func TestBrowserHistoryAndCharts(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	// placeCall places a call through the simulated carrier and hangs it up once answered: a
	// record with an attempt, and carrier callbacks.
	placeCall := func() call.Call {
		placed := placeAnswered(t, base)
		var got call.Call
		if code := request(t, http.MethodPost, base+"/api/calls/"+placed.ID+"/hangup", adminToken, nil, nil); code != http.StatusAccepted {
			t.Fatalf("hang-up: %d", code)
		}
		redistest.Eventually(t, 10*time.Second, "the call completed", func() bool {
			return request(t, http.MethodGet, base+"/api/calls/"+placed.ID, adminToken, nil, &got) == 200 && got.State == call.Completed
		})
		return placed
	}
	placed := placeCall()
	seed := func(from, agent string, end call.State) string {
		id := store.NewCallID()
		for _, e := range []call.Event{
			{ID: id + ":q", CallID: id, State: call.Queued, Direction: call.Inbound, From: from, To: "+15550000000", Agent: agent, Carrier: "simtx"},
			{ID: id + ":end", CallID: id, State: end, Carrier: "simtx"},
		} {
			if _, err := d.st.Apply(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	ann := seed("+15557770001", "ann", call.Completed)
	seed("+15558880002", "bob", call.NoAnswer)

	ctx := newBrowser(t, writeToneWAV(t, browserHz, 0.5, 1))
	p := page{t: t, ctx: ctx}
	rows := `document.querySelectorAll('[data-testid="cdr-row"]')`
	p.do("open the history", chromedp.Navigate(base+"/admin#history"),
		chromedp.SendKeys(tid("token-input"), adminToken), chromedp.Click(tid("token-save")))
	p.wait("three records, newest first", rows+`.length === 3 && `+rows+`[2].dataset.call === '`+placed.ID+`'`)

	p.do("search by number", chromedp.SetValue(tid("cdr-number"), "5557770001"), chromedp.Click(tid("cdr-search-submit")))
	p.wait("only ann's call", rows+`.length === 1 && `+rows+`[0].dataset.call === '`+ann+`'`)
	// Set by script: chromedp's SetValue cannot set "" (it reads the value back to check).
	set := func(id, value string) {
		p.eval(`(document.querySelector('[data-testid="` + id + `"]').value = '` + value + `', 0)`)
	}
	set("cdr-number", "")
	set("cdr-state", "no-answer")
	p.do("search by state", chromedp.Click(tid("cdr-search-submit")))
	p.wait("only the unanswered call", rows+`.length === 1 && `+rows+`[0].dataset.state === 'no-answer'`)
	set("cdr-state", "")
	set("cdr-agent", "nobody")
	p.do("search by agent", chromedp.Click(tid("cdr-search-submit")))
	p.wait("nothing", rows+`.length === 0`)
	set("cdr-agent", "")
	p.do("clear the search", chromedp.Click(tid("cdr-search-submit")))
	p.wait("all three again", rows+`.length === 3`)

	result := `document.querySelector('[data-testid="cdr-export-result"]').dataset`
	p.do("export CSV", chromedp.Click(`[data-testid="cdr-export"][data-format="csv"]`))
	p.wait("the CSV saved from a Blob", result+`.format === 'csv' && `+result+`.header.startsWith('recorded_at,call_id,state') && `+
		result+`.type.startsWith('text/csv') && `+result+`.file === 'cdr-start-now.csv' && Number(`+result+`.bytes) > 300`)
	p.do("export JSON", chromedp.Click(`[data-testid="cdr-export"][data-format="json"]`))
	p.wait("the JSON saved from a Blob", result+`.format === 'json' && `+result+`.file === 'cdr-start-now.json' && Number(`+result+`.bytes) > 300`)

	p.do("open the placed call", chromedp.Click(`[data-testid="cdr-row"][data-call="`+placed.ID+`"]`))
	entries := `[...document.querySelectorAll('[data-testid="timeline-entry"]')]`
	p.wait("its page with the attempt and the timeline, each entry with its source",
		`!document.querySelector('[data-testid="call-page"]').hidden && `+
			`document.querySelector('[data-testid="call-page-id"]').textContent === '`+placed.ID+`' && `+
			`document.querySelector('[data-testid="call-attempt"]')?.dataset.carrier === 'simtw' && `+
			entries+`.length >= 4 && `+entries+`.some((e) => e.dataset.source === 'callback' && e.dataset.state === 'completed') && `+
			entries+`.some((e) => e.dataset.source === 'switchboard') && `+
			entries+`.every((e) => e.querySelector('[data-testid="timeline-source"]').textContent !== '')`)
	shot(t, p, "console-call-page", "")
	p.do("back", chromedp.Click(tid("call-page-back")))
	p.wait("the list again", `document.querySelector('[data-testid="call-page"]').hidden && `+rows+`.length === 3`)
	shot(t, p, "console-history", "")

	p.do("open the charts", chromedp.Navigate(base+"/admin#charts"))
	p.wait("the carrier's callbacks drawn", `[...document.querySelectorAll('[data-testid="chart-callbacks"] polyline[data-carrier="simtw"]')]`+
		`.some((l) => l.dataset.outcome === 'stored' && Number(l.dataset.points) > 0 && Number(l.dataset.peak) > 0 && l.getAttribute('points').split(' ').length > 1)`)
	p.wait("the breakers drawn", `document.querySelector('[data-testid="chart-breakers"] rect[data-carrier="simtw"]')?.dataset.state === 'closed'`)
	shot(t, p, "console-charts", `document.querySelector('[data-testid="chart-in-progress"] svg')?.viewBox.baseVal.width <= innerWidth`)

	// The wallboard's callbacks per second are the same figures, over the last 10 to 20 s: a
	// fresh call's callbacks show there.
	placeCall()
	p.do("open the wallboard", chromedp.Navigate(base+"/admin#wallboard"))
	p.wait("the carrier's callbacks per second", `Number(document.querySelector('[data-testid="callbacks-simtw"]')?.textContent) > 0 && `+
		`document.querySelector('[data-testid="callbacks-simtx"]')?.textContent === '0.0'`)
}

// shot saves the page as docs/img/<name>.png at 1280 and 390 px wide, when
// SWITCHBOARD_SCREENSHOTS names a directory (the docs' screenshots are made so); otherwise it
// does nothing. ready, if not "", is a condition the page meets once it fits the new width.
func shot(t *testing.T, p page, name, ready string) {
	t.Helper()
	dir := os.Getenv("SWITCHBOARD_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, w := range []int64{1280, 390} {
		p.do("a "+strconv.FormatInt(w, 10)+" px window", chromedp.EmulateViewport(w, 800))
		if ready != "" {
			p.wait(name+" redrawn at "+strconv.FormatInt(w, 10)+" px", ready)
		}
		png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, w))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.do("back to the default size", chromedp.EmulateViewport(1280, 800))
}
