package main

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/store"
)

// landingPage is what GET / shows a newcomer: where the pages are, and where the rest is.
var landingPage = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.5">
<h1>Switchboard</h1>
<p>The telephony backend: carriers call its webhooks, agents take calls in the browser.</p>
<ul>
<li><a href="/agent">/agent</a>: the agents' softphone</li>
<li><a href="/admin">/admin</a>: the admin console (asks for the admin token)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a> and <a href="/readyz">/readyz</a>: health and readiness</li>
</ul>
<p>The JSON API lives under <code>/api/</code>, carriers' webhooks under <code>/webhooks/{carrier}/</code>.
Documentation: <code>README.md</code> and the <code>docs/</code> folder of the source repository
(<code>docs/api.md</code> for every route, <code>docs/deploy.md</code> for production).</p>
<p>Public URL of this instance: <code>{{.}}</code></p>
</body></html>
`))

func handleLanding(public string) echo.HandlerFunc {
	var page strings.Builder
	_ = landingPage.Execute(&page, public) // a fixed template and a string: it cannot fail, and a test serves the page
	body := page.String()
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		return c.HTML(http.StatusOK, body)
	}
}

// agentCounter lists the agents; *store.Redis is one.
type agentCounter interface {
	Agents(ctx context.Context) ([]store.Agent, error)
}

// printNextStep tells the user of an empty deployment (no demo, no carrier or no agent) what
// to do next, with requests that work as printed.
func printNextStep(ctx context.Context, w io.Writer, public, tokenRef string, carriers int, agents agentCounter) {
	if carriers == 0 {
		_, _ = fmt.Fprintf(w, "  next step: add a carrier, e.g.\n"+
			"    curl -X PUT -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' %s/api/admin/carriers/main \\\n"+
			"      -d '{\"kind\":\"twilio\",\"account_sid\":\"AC...\",\"auth_token\":\"...\",\"from\":\"+15550100\",\"enabled\":true}'\n",
			tokenRef, public) // the banner is advice; a closed stdout must not stop the server
	}
	if n, err := agents.Agents(ctx); err == nil && len(n) == 0 {
		_, _ = fmt.Fprintf(w, "  next step: add an agent (the answer carries its login token once), e.g.\n"+
			"    curl -X PUT -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' %s/api/admin/agents/ann -d '{\"name\":\"Ann\"}'\n",
			tokenRef, public) // the banner is advice; a closed stdout must not stop the server
	}
}
