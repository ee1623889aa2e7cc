// Package webrtc is Switchboard's media plane towards agents, over pion: the Engine (one codec
// table, one ICE setting, optionally one shared UDP socket for every peer), one Peer
// (PeerConnection) per signed-in agent, and the Bridge that joins one carrier media stream to
// one agent's Peer for the length of a call, with mute, hold and DTMF acting inside it.
//
// Audio is G.711 mu-law end to end: carriers stream 8 kHz mu-law and PCMU is the only codec
// negotiated with the browser, so frames cross the bridge without transcoding. The codec,
// tones and DTMF live in webrtc/media.
//
// It is not the agents' world: it knows no agent, call record, Redis or HTTP route. Who may
// sign in, which call rings where, the signalling WebSocket that carries offers, answers and
// candidates, and the softphone page are webrtc/agents, which uses this package through its
// exported API. The simulated agent (a pion peer playing a browser) is webrtc/agentsim. This
// package is the only one, with agentsim, that imports pion (as pion).
package webrtc
