package webrtc

import pion "github.com/pion/webrtc/v4"

// PeerState is an agent PeerConnection's connection state, mapped from pion's so callers of
// this package never import pion. The zero value means unknown.
type PeerState int8

// Peer states, in the order a healthy connection passes through them.
const (
	PeerStateUnknown PeerState = iota
	PeerStateNew
	PeerStateConnecting
	PeerStateConnected
	PeerStateDisconnected
	PeerStateFailed
	PeerStateClosed
)

func (s PeerState) String() string {
	switch s {
	case PeerStateNew:
		return "new"
	case PeerStateConnecting:
		return "connecting"
	case PeerStateConnected:
		return "connected"
	case PeerStateDisconnected:
		return "disconnected"
	case PeerStateFailed:
		return "failed"
	case PeerStateClosed:
		return "closed"
	default:
		return "unknown"
	}
}

// ParsePeerState is the inverse of String; anything else is PeerStateUnknown.
func ParsePeerState(s string) PeerState {
	for st := PeerStateNew; st <= PeerStateClosed; st++ {
		if st.String() == s {
			return st
		}
	}
	return PeerStateUnknown
}

// PeerStateFromPion maps pion's connection state to ours (agentsim reports its own with it).
func PeerStateFromPion(s pion.PeerConnectionState) PeerState {
	switch s {
	case pion.PeerConnectionStateNew:
		return PeerStateNew
	case pion.PeerConnectionStateConnecting:
		return PeerStateConnecting
	case pion.PeerConnectionStateConnected:
		return PeerStateConnected
	case pion.PeerConnectionStateDisconnected:
		return PeerStateDisconnected
	case pion.PeerConnectionStateFailed:
		return PeerStateFailed
	case pion.PeerConnectionStateClosed:
		return PeerStateClosed
	default:
		return PeerStateUnknown
	}
}
