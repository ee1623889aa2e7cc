package webrtc

import (
	"testing"

	pion "github.com/pion/webrtc/v4"
)

func TestPeerStateStringAndParse(t *testing.T) {
	tests := []struct {
		pion pion.PeerConnectionState
		want PeerState
		name string
	}{
		{pion.PeerConnectionStateUnknown, PeerStateUnknown, "unknown"},
		{pion.PeerConnectionStateNew, PeerStateNew, "new"},
		{pion.PeerConnectionStateConnecting, PeerStateConnecting, "connecting"},
		{pion.PeerConnectionStateConnected, PeerStateConnected, "connected"},
		{pion.PeerConnectionStateDisconnected, PeerStateDisconnected, "disconnected"},
		{pion.PeerConnectionStateFailed, PeerStateFailed, "failed"},
		{pion.PeerConnectionStateClosed, PeerStateClosed, "closed"},
	}
	for _, tt := range tests {
		if got := PeerStateFromPion(tt.pion); got != tt.want {
			t.Errorf("from pion %v = %v, want %v", tt.pion, got, tt.want)
		}
		if got := tt.want.String(); got != tt.name {
			t.Errorf("%d.String() = %q, want %q", tt.want, got, tt.name)
		}
		if got := ParsePeerState(tt.name); got != tt.want {
			t.Errorf("ParsePeerState(%q) = %v", tt.name, got)
		}
		// pion's names are ours too, so logs read the same on both sides.
		if tt.pion != pion.PeerConnectionStateUnknown && tt.pion.String() != tt.name {
			t.Errorf("pion calls %v %q", tt.want, tt.pion.String())
		}
	}
	var zero PeerState
	if zero != PeerStateUnknown || ParsePeerState("bogus") != PeerStateUnknown || PeerState(42).String() != "unknown" {
		t.Error("unknown states are not unknown")
	}
}
