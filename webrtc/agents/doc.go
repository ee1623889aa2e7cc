// Package agents is the agents' side of a Switchboard instance: the Hub that holds the
// signed-in agents' sessions (sign-in with a token, the signalling WebSocket, presence and
// heartbeats, availability, revocation), inbound routing (which agent rings, dispatching
// queued calls as agents free up), calls dialled from the softphone or the API, transfers as
// agents and the admin ask for them, the notices between instances, the claim and hand-over
// of the calls of instances that die or stop, and the embedded softphone page.
//
// It is not the calls themselves: a call whose carrier media this instance holds (its queue
// and hold tone, ringing, the agent side attached, the room with a third party, consults,
// recording, a number leg) is a held.Call, which the Hub keeps in its registry and hosts
// (held.Host: goroutines on the hub's WaitGroup, notices, the queue's wake-up). Nor is it a
// supervisor's monitoring socket, package monitor, which it mounts and hosts (monitor.Host),
// nor the transfer desk, package transfer, which checks transfer requests and writes them to
// the call's offer (the Hub's Transfer and ConsultAction are its).
// Two more subpackages carry its wires and know nothing of hubs, sessions or calls: signal is
// the signalling protocol (its messages, the socket's sending side, the browser-origin
// check), and relay carries a call's audio between instances when its stream and its agent
// are on different ones. Dependencies go one way: agents imports held, monitor and transfer;
// monitor and transfer import held; held imports none of them.
//
// Locks: Hub.mu is a leaf: nothing is locked while it is held. Sessions and held calls take
// it (through enter, forget, the host's methods) under their own locks, so the hub copies
// its sessions and calls out before calling them.
//
// It serves HTTP (cmd/switchboard mounts /agent, /agent/ws, /agent/monitor and
// /internal/media/:call) and keeps its shared state in Redis through store/agentdb. It holds
// no pion object of its own: every PeerConnection and every Bridge comes from the media
// plane, package webrtc, through its exported API (Engine.NewPeer, NewBridge). cmd/switchboard
// wires it to the carriers and the webhooks.
package agents
