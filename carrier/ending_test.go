package carrier

import (
	"testing"

	"github.com/switchboard/switchboard/call"
)

// One row per rule of ClassifyEnding, in the style of livekit/sip's errors_test.go.
func TestClassifyEnding(t *testing.T) {
	cases := []struct {
		name        string
		ending      Ending
		wantOutcome Outcome
		wantReason  string
	}{
		// Not an ending at all.
		{"ringing is no ending", Ending{State: call.Ringing}, OutcomeUnknown, "not ended"},
		{"unknown state", Ending{}, OutcomeUnknown, "not ended"},

		// The carrier delivered the call.
		{"completed", Ending{State: call.Completed, Reached: call.InProgress, SIPCode: 200}, Accepted, "answered"},
		{"completed after a mid-call 503", Ending{State: call.Completed, Reached: call.InProgress, SIPCode: 503}, Accepted, "answered"},
		{"failed after answer", Ending{State: call.Failed, Reached: call.InProgress, Cause: "unspecified"}, Accepted, "answered"},
		{"telnyx time limit after answer", Ending{State: call.Completed, Reached: call.InProgress, Cause: "time_limit"}, Accepted, "answered"},

		// We or the caller gave up.
		{"canceled", Ending{State: call.Canceled, Reached: call.Ringing, SIPCode: 487}, Final, "canceled"},
		{"canceled before ringing with 503", Ending{State: call.Canceled, SIPCode: 503}, Final, "canceled"},
		{"telnyx originator_cancel", Ending{State: call.Failed, Reached: call.Initiated, Cause: "originator_cancel"}, Final, "canceled"},

		// The callee's answer, by SIP code.
		{"486 busy here", Ending{State: call.Busy, Reached: call.Ringing, SIPCode: 486}, Final, "sip 486 busy"},
		{"600 busy everywhere", Ending{State: call.Busy, SIPCode: 600}, Final, "sip 600 busy"},
		{"603 decline", Ending{State: call.Failed, Reached: call.Ringing, SIPCode: 603}, Final, "sip 603 declined"},
		{"603 decline before ringing", Ending{State: call.Failed, SIPCode: 603}, Final, "sip 603 declined"},
		{"607 unwanted", Ending{State: call.Failed, SIPCode: 607}, Final, "sip 607 declined"},
		{"608 rejected", Ending{State: call.Failed, SIPCode: 608}, Final, "sip 608 declined"},
		{"404 not found", Ending{State: call.Failed, Reached: call.Initiated, SIPCode: 404}, Final, "sip 404 not found"},
		{"410 gone", Ending{State: call.Failed, SIPCode: 410}, Final, "sip 410 not found"},
		{"604 does not exist anywhere", Ending{State: call.Failed, SIPCode: 604}, Final, "sip 604 not found"},
		{"484 address incomplete", Ending{State: call.Failed, SIPCode: 484}, Final, "sip 484 invalid number"},
		{"485 ambiguous", Ending{State: call.Failed, SIPCode: 485}, Final, "sip 485 invalid number"},
		{"480 temporarily unavailable", Ending{State: call.NoAnswer, SIPCode: 480}, Final, "sip 480 unavailable"},
		{"487 terminated on ring timeout", Ending{State: call.NoAnswer, Reached: call.Ringing, SIPCode: 487}, Final, "sip 487 terminated"},
		{"699 other global failure", Ending{State: call.Failed, SIPCode: 699}, Final, "sip 699"},
		{"408 after ringing", Ending{State: call.NoAnswer, Reached: call.Ringing, SIPCode: 408}, Final, "sip 408 no answer"},

		// The carrier failed to deliver, by SIP code.
		{"408 before ringing", Ending{State: call.Failed, Reached: call.Initiated, SIPCode: 408}, CarrierFault, "sip 408 timeout"},
		{"408 with nothing known", Ending{State: call.NoAnswer, SIPCode: 408}, CarrierFault, "sip 408 timeout"},
		{"503 service unavailable", Ending{State: call.Failed, Reached: call.Initiated, SIPCode: 503}, CarrierFault, "sip 503"},
		{"500 server error", Ending{State: call.Failed, SIPCode: 500}, CarrierFault, "sip 500"},
		{"502 bad gateway", Ending{State: call.Failed, SIPCode: 502}, CarrierFault, "sip 502"},
		{"504 after ringing still the carrier", Ending{State: call.Failed, Reached: call.Ringing, SIPCode: 504}, CarrierFault, "sip 504"},
		{"503 overrides a busy state", Ending{State: call.Busy, SIPCode: 503}, CarrierFault, "sip 503"},
		{"403 forbidden", Ending{State: call.Failed, SIPCode: 403}, CarrierFault, "sip 403 refused"},
		{"401 unauthorized", Ending{State: call.Failed, SIPCode: 401}, CarrierFault, "sip 401 refused"},
		{"402 payment required", Ending{State: call.Failed, SIPCode: 402}, CarrierFault, "sip 402 refused"},
		{"407 proxy auth", Ending{State: call.Failed, SIPCode: 407}, CarrierFault, "sip 407 refused"},
		{"488 not acceptable here", Ending{State: call.Failed, SIPCode: 488}, CarrierFault, "sip 488"},
		{"400 bad request", Ending{State: call.Failed, SIPCode: 400}, CarrierFault, "sip 400"},
		{"482 loop detected", Ending{State: call.Failed, SIPCode: 482}, CarrierFault, "sip 482"},
		{"302 moved", Ending{State: call.Failed, SIPCode: 302}, CarrierFault, "sip 302"},

		// Telnyx hangup_cause without a SIP code.
		{"telnyx user_busy", Ending{State: call.Busy, Cause: "user_busy"}, Final, "busy"},
		{"telnyx call_rejected", Ending{State: call.Failed, Cause: "call_rejected"}, Final, "declined"},
		{"telnyx not_found", Ending{State: call.Failed, Cause: "not_found"}, Final, "not found"},
		{"telnyx no_answer", Ending{State: call.NoAnswer, Cause: "no_answer"}, Final, "no answer"},
		{"telnyx timeout without ringing", Ending{State: call.NoAnswer, Reached: call.Initiated, Cause: "timeout"}, Final, "no answer"},
		{"telnyx normal_clearing unanswered", Ending{State: call.Failed, Reached: call.Initiated, Cause: "normal_clearing"}, Final, "cleared"},
		{"telnyx time_limit unanswered", Ending{State: call.Failed, Cause: "time_limit"}, Final, "time limit"},
		{"telnyx unspecified, no ringing", Ending{State: call.Failed, Reached: call.Initiated, Cause: "unspecified"}, CarrierFault, "unspecified"},
		{"telnyx unspecified after ringing", Ending{State: call.Failed, Reached: call.Ringing, Cause: "unspecified"}, Final, "unspecified after ringing"},
		{"telnyx user_busy with sip 486", Ending{State: call.Busy, Cause: "user_busy", SIPCode: 486}, Final, "sip 486 busy"},
		{"telnyx unspecified with sip 503", Ending{State: call.Failed, Cause: "unspecified", SIPCode: 503}, CarrierFault, "sip 503"},

		// The state alone (Twilio without SipResponseCode).
		{"twilio busy", Ending{State: call.Busy, Reached: call.Ringing}, Final, "busy"},
		{"twilio no-answer after ringing", Ending{State: call.NoAnswer, Reached: call.Ringing}, Final, "no answer"},
		{"twilio no-answer before a reordered ringing", Ending{State: call.NoAnswer, Reached: call.Initiated}, Final, "no answer"},
		{"twilio failed before ringing", Ending{State: call.Failed, Reached: call.Initiated}, CarrierFault, "failed"},
		{"twilio failed from queued", Ending{State: call.Failed, Reached: call.Queued}, CarrierFault, "failed"},
		{"twilio failed after ringing", Ending{State: call.Failed, Reached: call.Ringing}, Final, "failed after ringing"},
		{"sip 200 on failed is no evidence", Ending{State: call.Failed, SIPCode: 200}, CarrierFault, "failed"},
		{"unknown cause falls to the state", Ending{State: call.Busy, Cause: "something_new"}, Final, "busy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ClassifyEnding(tc.ending)
			if r.Outcome != tc.wantOutcome {
				t.Errorf("outcome = %v, want %v", r.Outcome, tc.wantOutcome)
			}
			if r.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", r.Reason, tc.wantReason)
			}
			if r.Code != tc.ending.SIPCode || r.HTTPStatus != 0 || r.Retryable {
				t.Errorf("code %d status %d retryable %v", r.Code, r.HTTPStatus, r.Retryable)
			}
		})
	}
}

// Every terminal state gives a verdict whatever the code and cause; only non-terminal
// states give OutcomeUnknown.
func TestClassifyEndingIsTotal(t *testing.T) {
	causes := []string{"", "call_rejected", "normal_clearing", "originator_cancel", "timeout", "time_limit",
		"user_busy", "not_found", "no_answer", "unspecified", "new_cause"}
	for _, s := range append(call.States, call.Unknown) {
		for _, reached := range append(call.States, call.Unknown) {
			for code := 0; code < 800; code++ {
				for _, cause := range causes {
					r := ClassifyEnding(Ending{State: s, Reached: reached, SIPCode: code, Cause: cause})
					if (r.Outcome == OutcomeUnknown) != !s.Terminal() || r.Reason == "" {
						t.Fatalf("%v/%v/%d/%q gave %v", s, reached, code, cause, r)
					}
				}
			}
		}
	}
}
