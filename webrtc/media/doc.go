// Package media is the telephone audio both of Switchboard's media paths share: the G.711
// mu-law codec (carriers stream 8 kHz mu-law over WebSocket, browsers send PCMU over WebRTC),
// RFC 4733 telephone-events and in-band DTMF (generation and detection), the hold tone, a
// tone generator, a Goertzel detector that tests, the carrier simulator and the bridge use
// to prove that audio crossed a link, and a tone watch (ToneWatch) that times the gaps in a
// tone, the silence a listener heard while a call's media moved between instances; and the
// mixer (Mixer) of a call with more than two parties, each hearing the others minus itself,
// by who may hear whom (Role).
//
// It is not a media plane: it opens no socket, keeps no call state and imports nothing but the
// standard library, so the carrier simulator (carrier/sim) can use it without pulling in pion.
// The media plane over pion is package webrtc; the agents' world is webrtc/agents.
package media
