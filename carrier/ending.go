package carrier

import (
	"strconv"

	"github.com/switchboard/switchboard/call"
)

// Ending is how a placed call ended, as its carrier reported it later in a status callback
// or webhook, with how far the call had got before.
type Ending struct {
	// State is the terminal state reported. Completed means the call was answered; an
	// unanswered hangup is Busy, NoAnswer, Failed or Canceled.
	State call.State
	// Reached is the furthest state the call had reached before this report (the call
	// record's state), or Unknown. Telnyx reports no ringing, so its calls go from
	// Initiated straight to InProgress or to their end.
	Reached call.State
	// SIPCode is Twilio's SipResponseCode or Telnyx's sip_hangup_cause; 0 if none.
	SIPCode int
	// Cause is Telnyx's hangup_cause ("user_busy", "unspecified", ...); empty for Twilio.
	Cause string
}

// ClassifyEnding says what the end of a placed call means for routing: Accepted if the
// carrier delivered it, Final if the callee (or the caller) ended it, CarrierFault if the
// carrier failed to deliver it, so the call may go to the next carrier and the failure
// counts against this one. The evidence is read from the most specific down: the SIP code,
// then the Telnyx cause, then the state.
//
// Like jambonz, which cranks back to the next gateway on failure responses but not on 487,
// and Kamailio setups that fail over on 5xx and 408, a carrier or network failure moves the
// call on while the callee's own answer (busy, declined, not found, invalid number) stops
// it. A failure after ringing is Final where the cause is ambiguous (SIP 408, Telnyx
// "unspecified", Twilio "failed" without a code): the callee's phone has rung, and ringing
// it again through another carrier is worse than giving up.
func ClassifyEnding(e Ending) Result {
	res := func(o Outcome, reason string) Result {
		return Result{Outcome: o, Reason: reason, Code: e.SIPCode}
	}
	rang := e.Reached == call.Ringing || e.Reached == call.InProgress
	switch {
	case !e.State.Terminal():
		return res(OutcomeUnknown, "not ended")
	case e.State == call.Completed || e.Reached == call.InProgress:
		return res(Accepted, "answered")
	case e.State == call.Canceled || e.Cause == "originator_cancel":
		return res(Final, "canceled")
	}
	if e.SIPCode >= 300 && e.SIPCode < 700 {
		o, label := classifySIP(e.SIPCode, rang)
		reason := "sip " + strconv.Itoa(e.SIPCode)
		if label != "" {
			reason += " " + label
		}
		return res(o, reason)
	}
	switch e.Cause {
	case "user_busy":
		return res(Final, "busy")
	case "call_rejected":
		return res(Final, "declined")
	case "not_found":
		return res(Final, "not found")
	case "no_answer", "timeout":
		// Telnyx's timeout is timeout_secs passing unanswered: a no-answer. Telnyx sends no
		// ringing event, so the lack of one proves nothing here.
		return res(Final, "no answer")
	case "normal_clearing":
		// Cleared before an answer: the far end ended it, which is the callee's doing.
		return res(Final, "cleared")
	case "time_limit":
		return res(Final, "time limit")
	case "unspecified":
		if rang {
			return res(Final, "unspecified after ringing")
		}
		return res(CarrierFault, "unspecified")
	}
	switch e.State {
	case call.Busy:
		return res(Final, "busy")
	case call.NoAnswer:
		// Twilio may deliver no-answer before ringing (callbacks reorder) and Telnyx never
		// reports ringing: a no-answer without a SIP code is the callee's, not the carrier's.
		return res(Final, "no answer")
	case call.Failed:
		if rang {
			return res(Final, "failed after ringing")
		}
		return res(CarrierFault, "failed")
	}
	return res(OutcomeUnknown, "unknown ending")
}

// classifySIP maps a final SIP response (RFC 3261 §21 and its extensions) to an outcome.
func classifySIP(code int, rang bool) (Outcome, string) {
	switch code {
	case 486, 600:
		return Final, "busy"
	case 603, 607, 608:
		return Final, "declined" // Decline, Unwanted, Rejected
	case 404, 410, 604:
		return Final, "not found" // Not Found, Gone, Does Not Exist Anywhere
	case 484, 485:
		return Final, "invalid number" // Address Incomplete, Ambiguous
	case 480:
		// Temporarily Unavailable: the handset is off or out of coverage; another carrier
		// reaches the same handset.
		return Final, "unavailable"
	case 487:
		// Request Terminated: the INVITE was cancelled (our hangup, or the carrier's ring
		// timeout). jambonz does not crank back on it either.
		return Final, "terminated"
	case 408:
		if rang {
			return Final, "no answer"
		}
		return CarrierFault, "timeout"
	case 401, 402, 403, 407:
		// The carrier, or its next hop, refuses us: credentials, credit, permissions.
		return CarrierFault, "refused"
	}
	switch {
	case code >= 500 && code < 600:
		return CarrierFault, ""
	case code >= 600:
		return Final, ""
	}
	// 3xx and the remaining 4xx (400, 405, 415, 420, 481-483, 488, ...) are protocol or
	// routing trouble between the carrier and the far end, which another carrier may avoid.
	return CarrierFault, ""
}
