package held

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/store/agentdb"
)

// Host is what a held call needs from the instance that holds it (agents.Hub): its
// goroutines, its notices to other instances, its queue and its registry of calls and legs.
// A call calls its host's methods under its own lock: none of them may take a call's lock.
type Host interface {
	// After runs f after d on a goroutine the host owns; Stop the timer to cancel it.
	After(d time.Duration, f func()) *time.Timer
	// Background runs f on a goroutine the host owns, with a context that ends after timeout
	// or when the host shuts down.
	Background(timeout time.Duration, f func(ctx context.Context))
	// Go runs f on a goroutine the host waits for when it shuts down; false (f not run) if it
	// has shut down already.
	Go(f func()) bool
	// Send delivers n to instance (maybe this one), asynchronously: a sender never re-enters
	// its own locks.
	Send(instance string, n Notice)
	// Poke says queued calls may find an agent now.
	Poke()
	// Forget drops the ended (or moved) call c from the host's calls.
	Forget(c *Call)
	// TrackLeg and UntrackLeg keep the number legs bridged here, by their call id, so that
	// their stream and their carrier state reach them (Leg.StreamStarted, Leg.CarrierEnded).
	TrackLeg(l *Leg)
	UntrackLeg(l *Leg)
}

// Options are a held call's settings: the host's, shared by all of its calls.
type Options struct {
	Store    *agentdb.Store
	Carriers Carriers
	// Instance names this instance; PublicURL is where carriers and other instances reach it.
	Instance  string
	PublicURL string
	// RingTimeout, QueueTimeout and PresenceTTL are the hub's (agents.HubOptions).
	RingTimeout  time.Duration
	QueueTimeout time.Duration
	PresenceTTL  time.Duration
	// Recording turns call recording on; nil: off.
	Recording *RecordingOptions
	Log       *slog.Logger
}

// Carriers is what the agents' side and its held calls need from the carrier side: place a
// call (through the carrier router, which records it), end one, let go of an inbound call
// nobody could take (what the caller hears then depends on the carrier: an apology sent as
// the call's new TwiML, or a hang-up), and point a live call's media stream at another
// instance (mediaURL, its public base URL) when the one carrying it died. Repoint's nil means
// the carrier now streams the call there; on a refusal the carrier side has the call
// reconciled itself.
type Carriers interface {
	Place(ctx context.Context, p Placement) error
	Hangup(ctx context.Context, callID string) error
	Release(ctx context.Context, callID string) error
	Repoint(ctx context.Context, callID, mediaURL string) error
}

// Placement asks the carrier side to place an outbound call for an agent.
type Placement struct {
	CallID string
	Agent  string
	To     string
	// MediaURL is the public base URL of the instance that holds the agent: the call's media
	// stream must be pointed there.
	MediaURL string
}

// Sink is the agent side of a held call: the agent's bridge on this instance, or the
// relay to the instance that holds the agent.
type Sink interface {
	Audio(ulaw []byte)
	DTMF(digit string)
	// Ended says the call is over, and why. It must not block.
	Ended(reason string)
	// Moved says the call's media went to another instance (this one is stopping, or was
	// taken for dead): the agent's side waits for it there. It must not block.
	Moved()
}

// Follower is a room leg that follows its call when the call's media moves to another
// instance (a supervisor's monitoring): it is told Moved, not Ended, when the call leaves
// this one. Other room legs (a consult, a conference) end there.
type Follower interface {
	FollowsMoves() bool
}

// Notice is a message between instances, sent on the receiver's own Pub/Sub channel; the
// agents' hub sends and handles all of them, a held call sends the kinds below.
type Notice struct {
	Type      string `json:"type"`
	Call      string `json:"call,omitempty"`
	Agent     string `json:"agent,omitempty"`
	Session   string `json:"session,omitempty"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Holder    string `json:"holder,omitempty"`
	HolderURL string `json:"holder_url,omitempty"`
	Reason    string `json:"reason,omitempty"`
	By        string `json:"by,omitempty"` // transfer, consult: the agent who transferred the call
	// Consults: the consulted agent's instance, and a warm transfer's step or state.
	Instance string `json:"instance,omitempty"`
	State    string `json:"state,omitempty"`
	// Leg is the call id of a transfer's outbound leg to a number (agents' noticeToNumber).
	Leg string `json:"leg,omitempty"`
}

// The notices a held call sends to its agents' instances, and those to the holder that a
// transfer desk (package transfer) sends, for the held call to act on.
const (
	NoticeTransfer  = "transfer"   // to the holder: the call's agent transferred it; ring the target
	NoticeToNumber  = "to-number"  // to the holder: the call's agent transferred it to number To on leg Leg
	NoticeConsult   = "consult"    // to the holder: the call's agent consults Agent; ring it
	NoticeConsultDo = "consult-do" // to the holder: take the consult's step State (complete, cancel, conference)

	NoticeRing          = "ring"           // ring the agent for a call
	NoticeEnded         = "ended"          // the call ended (or stopped ringing)
	NoticeAttach        = "attach"         // the call's media has arrived at its holder
	NoticeTransferState = "transfer-state" // how the agent's warm transfer goes (State)
	NoticeRecorded      = "recorded"       // the call's recording is in state Reason
)

// Why a call ended, as sessions report it to the softphone ("ended" messages). Carrier states
// ("busy", "no-answer", "failed", "completed", "canceled") are reasons too.
const (
	ReasonHangup      = "hangup"         // the far end hung up
	ReasonAgentHangup = "agent-hangup"   // the agent hung up
	ReasonMissed      = "missed"         // it rang out on this agent, who is now away
	ReasonDeclined    = "declined"       // the agent declined it
	ReasonNoAgent     = "no-agent"       // nobody took it within the queue timeout
	ReasonGone        = "gone"           // it is no longer offered (answered elsewhere, ended)
	ReasonCarrier     = "carrier-failed" // it could not be placed
	ReasonMediaLost   = "media-lost"     // the media path between instances broke
	ReasonAgentLost   = "agent-lost"     // the agent's session vanished and did not come back
	// ReasonTransferred ends the call for the agent who transferred it.
	ReasonTransferred = "transferred"
	// ReasonConsultEnded ends a consulted agent's part in a call that goes on without it.
	ReasonConsultEnded = "consult-ended"
)

// EndAction is what ending a held call asks of the carrier.
type EndAction int8

const (
	EndStreamGone EndAction = iota + 1 // nothing: the call already ended at the carrier
	EndHangup                          // hang the call up
	EndRelease                         // let the caller go politely (nobody could take the call)
)

// OpTimeout bounds background work that talks to Redis or a carrier.
const OpTimeout = 10 * time.Second

var (
	// ErrCallOver is returned for a call that has ended.
	ErrCallOver = errors.New("agents: the call is over")
	// ErrNotHere is returned for a call whose media belongs to another instance.
	ErrNotHere = errors.New("agents: the call's media is held by another instance")
	// ErrNotYours: the call is not answered by the agent that asks.
	ErrNotYours = errors.New("agents: the call is not answered by this agent")
)
