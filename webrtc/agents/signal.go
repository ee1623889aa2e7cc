package agents

import (
	"encoding/json"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
)

// The signalling protocol between the softphone and its instance: JSON text messages over one
// WebSocket per agent, each with a "type". docs/agents.md describes every message.

// Message types the softphone sends.
const (
	msgHello        = "hello"
	msgOffer        = "offer"
	msgCandidate    = "candidate"
	msgDial         = "dial"
	msgAnswer       = "answer"
	msgDecline      = "decline"
	msgHangup       = "hangup"
	msgMute         = "mute"
	msgHold         = "hold"
	msgDTMF         = "dtmf"
	msgAvailability = "availability"
	msgPing         = "ping"
)

// Message types the instance sends that are not also client types.
const (
	msgWelcome = "welcome"
	msgRinging = "ringing"
	msgCall    = "call"
	msgEnded   = "ended"
	msgError   = "error"
	msgPong    = "pong"
)

// clientMessage is any message from the softphone; Type says which fields matter.
type clientMessage struct {
	Type      string          `json:"type"`
	Token     string          `json:"token,omitempty"`     // hello
	SDP       string          `json:"sdp,omitempty"`       // offer
	Candidate json.RawMessage `json:"candidate,omitempty"` // candidate: RTCIceCandidateInit, or null
	To        string          `json:"to,omitempty"`        // dial
	CallID    string          `json:"call_id,omitempty"`   // answer, decline, hangup
	On        bool            `json:"on,omitempty"`        // mute, hold
	Digits    string          `json:"digits,omitempty"`    // dtmf
	State     string          `json:"state,omitempty"`     // availability
}

// maxClientMessage bounds one message from the softphone; an offer SDP is a few KiB.
const maxClientMessage = 64 << 10

// Error codes sent in error messages.
const (
	codeUnauthorized = "unauthorized"   // hello with a bad token, or no hello
	codeBadRequest   = "bad_request"    // a message the instance cannot read or does not take now
	codeReplaced     = "replaced"       // the agent signed in elsewhere; this session is over
	codeBusy         = "busy"           // already on a call
	codeRinging      = "ringing"        // a call is ringing: answer or decline it first
	codeGone         = "gone"           // the call is no longer offered (rang out, caller hung up)
	codeNoCall       = "no_call"        // a call command without a call
	codeCarrier      = "carrier_failed" // the call could not be placed
	codeMedia        = "media_failed"   // the browser's audio could not be connected
	codeUnavailable  = "unavailable"    // storage did not answer; retry
)

type agentView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// callView is a call as the softphone shows it.
type callView struct {
	CallID    string         `json:"call_id"`
	State     string         `json:"state"` // the call's state (call.State names), or "connecting"
	Direction call.Direction `json:"direction"`
	From      string         `json:"from,omitempty"`
	To        string         `json:"to,omitempty"`
	Muted     bool           `json:"muted"`
	Held      bool           `json:"held"`
	// AnsweredAt is when the parties were connected; the softphone's timer runs from it.
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

type ringView struct {
	CallID    string `json:"call_id"`
	From      string `json:"from"`
	To        string `json:"to"`
	TimeoutMS int64  `json:"timeout_ms"`
}

type welcomeMessage struct {
	Type    string               `json:"type"`
	Session string               `json:"session"`
	Agent   agentView            `json:"agent"`
	State   agentdb.Availability `json:"state"`
	Since   time.Time            `json:"since"`
	Until   *time.Time           `json:"until,omitempty"`
	Call    *callView            `json:"call,omitempty"`
	Ringing *ringView            `json:"ringing,omitempty"`
	// ICEServers are the STUN/TURN servers the page gives its RTCPeerConnection.
	ICEServers json.RawMessage `json:"ice_servers,omitempty"`
}

type sdpMessage struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

type candidateMessage struct {
	Type      string          `json:"type"`
	Candidate json.RawMessage `json:"candidate"`
}

type ringingMessage struct {
	Type string `json:"type"`
	ringView
}

type callMessage struct {
	Type string `json:"type"`
	callView
}

type endedMessage struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Reason string `json:"reason"`
}

type availabilityMessage struct {
	Type  string               `json:"type"`
	State agentdb.Availability `json:"state"`
	Since time.Time            `json:"since"`
	Until *time.Time           `json:"until,omitempty"`
	// Next is the state the agent asked for while on a call, taken after wrap-up.
	Next string `json:"next,omitempty"`
}

type errorMessage struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	CallID  string `json:"call_id,omitempty"`
}

type digitMessage struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Digit  string `json:"digit"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// validNumber reports whether s is an E.164 number: '+', then 8 to 15 digits, the first not 0.
func validNumber(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
