// Package signal is the signalling protocol between the softphone and its Switchboard
// instance: the JSON messages each side sends over the agent's WebSocket (docs/agents.md
// describes every one), the sending side of that socket (Conn: a bounded queue and one
// writer, so a browser that stops reading delays nobody but itself), and which browser
// origins may open it (Origins).
//
// It is the wire, not the conversation: what a message does (sign-in, presence, calls, the
// PeerConnection) is package agents', which owns every goroutine and session. It knows no
// hub, Redis key or pion object.
package signal

import (
	"encoding/json"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
)

// The messages are JSON text over one WebSocket per agent, each with a "type".

// Message types the softphone sends.
const (
	TypeHello        = "hello"
	TypeOffer        = "offer"
	TypeCandidate    = "candidate"
	TypeDial         = "dial"
	TypeAnswer       = "answer"
	TypeDecline      = "decline"
	TypeHangup       = "hangup"
	TypeMute         = "mute"
	TypeHold         = "hold"
	TypeRecord       = "record" // state: recording (start or resume) or paused
	TypeDTMF         = "dtmf"
	TypeAvailability = "availability"
	TypePing         = "ping"
	TypeWrapUp       = "wrapup"
)

// Message types the instance sends that are not also client types.
const (
	TypeWelcome = "welcome"
	TypeRinging = "ringing"
	TypeCall    = "call"
	TypeEnded   = "ended"
	TypeError   = "error"
	TypePong    = "pong"
	// TypeWrapUpSaved acknowledges a wrapup message: the wrap-up is stored.
	TypeWrapUpSaved = "wrapup-saved"
)

// ClientMessage is any message from the softphone; Type says which fields matter.
type ClientMessage struct {
	Type      string          `json:"type"`
	Token     string          `json:"token,omitempty"`     // hello
	SDP       string          `json:"sdp,omitempty"`       // offer
	Candidate json.RawMessage `json:"candidate,omitempty"` // candidate: RTCIceCandidateInit, or null
	To        string          `json:"to,omitempty"`        // dial
	CallID    string          `json:"call_id,omitempty"`   // answer, decline, hangup
	On        bool            `json:"on,omitempty"`        // mute, hold
	Digits    string          `json:"digits,omitempty"`    // dtmf
	State     string          `json:"state,omitempty"`     // availability, record
	// wrapup (with CallID)
	Notes       string `json:"notes,omitempty"`
	Disposition string `json:"disposition,omitempty"`
}

// MaxClientMessage bounds one message from the softphone; an offer SDP is a few KiB.
const MaxClientMessage = 64 << 10

// Error codes sent in error messages.
const (
	CodeUnauthorized = "unauthorized"   // hello with a bad token, or no hello
	CodeBadRequest   = "bad_request"    // a message the instance cannot read or does not take now
	CodeReplaced     = "replaced"       // the agent signed in elsewhere; this session is over
	CodeBusy         = "busy"           // already on a call
	CodeRinging      = "ringing"        // a call is ringing: answer or decline it first
	CodeGone         = "gone"           // the call is no longer offered (rang out, caller hung up)
	CodeNoCall       = "no_call"        // a call command without a call
	CodeCarrier      = "carrier_failed" // the call could not be placed
	CodeMedia        = "media_failed"   // the browser's audio could not be connected
	CodeUnavailable  = "unavailable"    // storage did not answer; retry
	CodeInvalid      = "invalid"        // a wrap-up's content is not acceptable (disposition, notes)
	CodeNotFound     = "not_found"      // no such call of this agent's
	CodeClosed       = "closed"         // the call's wrap-up window has closed
)

type AgentView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CallView is a call as the softphone shows it.
type CallView struct {
	CallID    string         `json:"call_id"`
	State     string         `json:"state"` // the call's state (call.State names), or "connecting"
	Direction call.Direction `json:"direction"`
	From      string         `json:"from,omitempty"`
	To        string         `json:"to,omitempty"`
	Muted     bool           `json:"muted"`
	Held      bool           `json:"held"`
	// Recording is the call's recording: recording, paused or off; "" until its holder says.
	Recording string `json:"recording,omitempty"`
	// AnsweredAt is when the parties were connected; the softphone's timer runs from it.
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

type RingView struct {
	CallID    string `json:"call_id"`
	From      string `json:"from"`
	To        string `json:"to"`
	TimeoutMS int64  `json:"timeout_ms"`
}

type WelcomeMessage struct {
	Type    string               `json:"type"`
	Session string               `json:"session"`
	Agent   AgentView            `json:"agent"`
	State   agentdb.Availability `json:"state"`
	Since   time.Time            `json:"since"`
	Until   *time.Time           `json:"until,omitempty"`
	Call    *CallView            `json:"call,omitempty"`
	Ringing *RingView            `json:"ringing,omitempty"`
	// ICEServers are the STUN/TURN servers the page gives its RTCPeerConnection.
	ICEServers json.RawMessage `json:"ice_servers,omitempty"`
	// Dispositions are what the agent may close a call with (SWITCHBOARD_DISPOSITIONS), and
	// MaxNotes how many characters its notes may have.
	Dispositions []string `json:"dispositions"`
	MaxNotes     int      `json:"max_notes"`
	// Recording is how calls are recorded here: all, on-demand, or "" (not at all).
	Recording string `json:"recording,omitempty"`
}

type SDPMessage struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

type CandidateMessage struct {
	Type      string          `json:"type"`
	Candidate json.RawMessage `json:"candidate"`
}

type RingingMessage struct {
	Type string `json:"type"`
	RingView
}

type CallMessage struct {
	Type string `json:"type"`
	CallView
}

type EndedMessage struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Reason string `json:"reason"`
}

type AvailabilityMessage struct {
	Type  string               `json:"type"`
	State agentdb.Availability `json:"state"`
	Since time.Time            `json:"since"`
	Until *time.Time           `json:"until,omitempty"`
	// Next is the state the agent asked for while on a call, taken after wrap-up.
	Next string `json:"next,omitempty"`
}

type ErrorMessage struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	CallID  string `json:"call_id,omitempty"`
}

// WrapUpSavedMessage says the wrap-up of a call is stored, as the call now shows it.
type WrapUpSavedMessage struct {
	Type        string    `json:"type"`
	CallID      string    `json:"call_id"`
	Disposition string    `json:"disposition"`
	WrappedUpAt time.Time `json:"wrapped_up_at"`
}

type DigitMessage struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Digit  string `json:"digit"`
}

// ValidNumber reports whether s is an E.164 number: '+', then 8 to 15 digits, the first not 0.
func ValidNumber(s string) bool {
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
