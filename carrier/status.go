package carrier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/call"
)

// Liveness is what a carrier's REST API says about one of its calls.
type Liveness int8

const (
	// LivenessUnknown is the zero value.
	LivenessUnknown Liveness = iota
	// Live: the carrier still has the call up (queued, ringing or answered).
	Live
	// Ended: the carrier says the call is over. CallStatus.State says how, when the carrier
	// tells (Twilio); Telnyx only says that it ended.
	Ended
	// Gone: the carrier does not know the call (Twilio 404; Telnyx 404 or 422, which it
	// answers from 10 minutes after a call ended). Not proof of anything by itself.
	Gone
	// LookupFailed: no usable answer (transport error, timeout, 429, 5xx, an answer we cannot
	// read). It never ends a call: the check is tried again later.
	LookupFailed
)

var livenessNames = [...]string{"unknown", "live", "ended", "gone", "error"}

func (l Liveness) String() string {
	if l < 0 || int(l) >= len(livenessNames) {
		return livenessNames[0]
	}
	return livenessNames[l]
}

// CallStatus is a carrier's answer to "how is this call?", classified.
type CallStatus struct {
	Liveness Liveness
	// State is the call's state in our words when the carrier names one (Twilio's status);
	// Unknown otherwise (Telnyx, Gone, LookupFailed).
	State call.State
	// EndedAt is the carrier's end_time, zero when it gives none.
	EndedAt time.Time
	// Answered says the carrier reports talk time (Telnyx call_duration > 0), a hint for how
	// an ended Telnyx call ended.
	Answered bool
	// Reason is short, for a metric label or a log line: "http 429", "timeout", "bad response".
	Reason string
	// Detail is longer text for logs, clipped and free of secrets.
	Detail string
}

// StatusChecker looks calls up on a carrier's REST API; both clients implement it.
type StatusChecker interface {
	CallStatus(ctx context.Context, carrierCallID string) CallStatus
}

// failedLookup turns a Result that is not a usable answer into a LookupFailed status.
func failedLookup(r Result) CallStatus {
	return CallStatus{Liveness: LookupFailed, Reason: r.Reason, Detail: r.Detail}
}

// CallStatus fetches the Call resource: GET .../Calls/{CallSid}.json
// (https://www.twilio.com/docs/voice/api/call-resource#fetch-a-call-resource).
func (c *TwilioClient) CallStatus(ctx context.Context, callSid string) CallStatus {
	if !validToken(callSid, 128, false) {
		return CallStatus{Liveness: LookupFailed, Reason: "invalid request", Detail: fmt.Sprintf("call sid %q", callSid)}
	}
	u := c.accounts + "/Calls/" + url.PathEscape(callSid) + ".json"
	status, body, err := roundTrip(ctx, c.hc, c.timeout, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(c.sid, c.token)
		return req, nil
	})
	if err != nil {
		return failedLookup(c.scrub.transport(err))
	}
	return ClassifyTwilioStatus(status, c.scrub.bytes(body))
}

// ClassifyTwilioStatus reads a Call resource. Twilio's statuses map one to one onto ours;
// queued, ringing and in-progress are live, the other five are endings.
func ClassifyTwilioStatus(status int, body []byte) CallStatus {
	if status == http.StatusNotFound {
		r := ClassifyTwilio(status, body)
		return CallStatus{Liveness: Gone, Reason: "http 404", Detail: r.Detail}
	}
	if r := ClassifyTwilio(status, body); r.Outcome != Accepted {
		return failedLookup(r)
	}
	var res struct {
		Status  string  `json:"status"`
		EndTime *string `json:"end_time"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return CallStatus{Liveness: LookupFailed, Reason: "bad response", Detail: clip("call resource: " + err.Error())}
	}
	state, err := call.ParseState(res.Status)
	if err != nil || state == call.Initiated {
		return CallStatus{Liveness: LookupFailed, Reason: "bad response", Detail: clip(fmt.Sprintf("unknown call status %q", res.Status))}
	}
	cs := CallStatus{Liveness: Live, State: state, Reason: res.Status}
	if state.Terminal() {
		cs.Liveness = Ended
		if res.EndTime != nil {
			// RFC 2822 as Twilio writes it: "Tue, 31 Aug 2010 20:36:44 +0000".
			if t, err := time.Parse(time.RFC1123Z, *res.EndTime); err == nil {
				cs.EndedAt = t.UTC()
			}
		}
	}
	return cs
}

// CallStatus retrieves a call's status: GET /v2/calls/{call_control_id}
// (https://developers.telnyx.com/api-reference/call-information/retrieve-a-call-status).
func (c *TelnyxClient) CallStatus(ctx context.Context, callControlID string) CallStatus {
	if !validToken(callControlID, 256, false) {
		return CallStatus{Liveness: LookupFailed, Reason: "invalid request", Detail: fmt.Sprintf("call control id %q", callControlID)}
	}
	u := c.calls + "/" + url.PathEscape(callControlID)
	status, body, err := roundTrip(ctx, c.hc, c.timeout, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+c.key)
		return req, nil
	})
	if err != nil {
		return failedLookup(c.scrub.transport(err))
	}
	return ClassifyTelnyxStatus(status, c.scrub.bytes(body))
}

// ClassifyTelnyxStatus reads a call status. Telnyx says only whether the call is alive: a
// call that is not alive ended, but how is for the caller to decide (see EndingState).
// 404 and 422 mean Telnyx does not know the call (or no longer: it keeps ended calls for
// 10 minutes).
func ClassifyTelnyxStatus(status int, body []byte) CallStatus {
	if status == http.StatusNotFound || status == http.StatusUnprocessableEntity {
		r := ClassifyTelnyx(status, body)
		return CallStatus{Liveness: Gone, Reason: "http " + strconv.Itoa(status), Detail: r.Detail}
	}
	if r := ClassifyTelnyx(status, body); r.Outcome != Accepted {
		return failedLookup(r)
	}
	var res struct {
		Data *struct {
			RecordType   string   `json:"record_type"`
			IsAlive      *bool    `json:"is_alive"`
			CallDuration *float64 `json:"call_duration"`
			EndTime      *string  `json:"end_time"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return CallStatus{Liveness: LookupFailed, Reason: "bad response", Detail: clip("call status: " + err.Error())}
	}
	if res.Data == nil || res.Data.IsAlive == nil {
		return CallStatus{Liveness: LookupFailed, Reason: "bad response", Detail: "call status without data.is_alive"}
	}
	if *res.Data.IsAlive {
		return CallStatus{Liveness: Live, Reason: "alive"}
	}
	cs := CallStatus{Liveness: Ended, Reason: "not alive", Answered: res.Data.CallDuration != nil && *res.Data.CallDuration > 0}
	if res.Data.EndTime != nil {
		if t, err := time.Parse(time.RFC3339Nano, *res.Data.EndTime); err == nil {
			cs.EndedAt = t.UTC()
		}
	}
	return cs
}

// EndingState decides how a call the carrier reports ended did end, given the state our
// record has. A carrier that names the ending (Twilio) is taken at its word. Telnyx does not:
// a call that was answered (by our record, or by its talk time) completed; one that never was
// is no-answer, Twilio's word for "not answered or rejected", the closest documented state for
// a call that rang out, was refused or was abandoned without an answer.
func EndingState(s CallStatus, ours call.State) call.State {
	if s.State.Terminal() {
		return s.State
	}
	if s.Answered || ours == call.InProgress {
		return call.Completed
	}
	return call.NoAnswer
}
