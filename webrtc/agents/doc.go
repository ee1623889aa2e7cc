// Package agents is the agents' side of a Switchboard instance: the Hub that holds the
// signed-in agents' sessions (sign-in with a token, the signalling WebSocket, presence and
// heartbeats, availability, revocation), inbound routing (ring one agent at a time, queue the
// caller with the hold tone, hand the call to the next agent), calls dialled from the
// softphone, the carrier media streams this instance holds and their hand-over when an
// instance dies or stops, the notices between instances, and the embedded softphone page.
//
// Two subpackages carry its wires and know nothing of hubs or sessions: signal is the
// signalling protocol (its messages, the socket's sending side, the browser-origin check),
// and relay carries a call's audio between instances when its stream and its agent are on
// different ones. This package decides what their messages and frames do.
//
// It serves HTTP (cmd/switchboard mounts /agent, /agent/ws and /internal/media/:call) and
// keeps its shared state in Redis through store/agentdb. It holds no pion object of its own:
// every PeerConnection and every Bridge comes from the media plane, package webrtc, through
// its exported API (Engine.NewPeer, NewBridge). cmd/switchboard wires it to the carriers and
// the webhooks.
package agents
