package carrier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// LiveCallsTo lists the sids of this account's calls to `to` from `from` (empty: the
// configured caller id) that were created at or after since and are not over: GET
// .../Calls.json?To=...&From=...&StartTime>=YYYY-MM-DD (Twilio filters start times by UTC
// date only, so the exact bound is applied here to date_created). It finds the call a
// create request made although its answer never reached us. The list is eventually
// consistent: a call created a moment ago may be missing from it.
func (c *TwilioClient) LiveCallsTo(ctx context.Context, to, from string, since time.Time) ([]string, Result) {
	if from == "" {
		from = c.from
	}
	q := url.Values{"To": {to}, "From": {from}, "StartTime>": {since.UTC().Format(time.DateOnly)}, "PageSize": {"50"}}
	status, body, err := roundTrip(ctx, c.hc, c.timeout, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.accounts+"/Calls.json?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(c.sid, c.token)
		return req, nil
	})
	if err != nil {
		return nil, c.scrub.transport(err)
	}
	r := ClassifyTwilio(status, c.scrub.bytes(body))
	if r.Outcome != Accepted {
		return nil, r
	}
	var page struct {
		Calls []struct {
			SID         string `json:"sid"`
			Status      string `json:"status"`
			DateCreated string `json:"date_created"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, Result{Outcome: CarrierFault, Reason: "bad response", HTTPStatus: status, Detail: "not a call list"}
	}
	var sids []string
	for _, call := range page.Calls {
		created, err := time.Parse(time.RFC1123Z, call.DateCreated)
		switch {
		case err != nil || created.Before(since.Truncate(time.Second)) || !validToken(call.SID, 128, false):
		case call.Status == "queued", call.Status == "initiated", call.Status == "ringing", call.Status == "in-progress":
			sids = append(sids, call.SID)
		}
	}
	return sids, r
}
