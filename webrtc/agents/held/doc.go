// Package held is a call whose carrier media this instance holds: the queue phase with the
// hold tone, the ring timers for one agent at a time, the agent side attached as the call's
// sink (the agent's bridge here, or a relay to another instance), the room and its mixer clock
// once more than two parties are on the call (a consult, a conference, a supervisor), warm
// and blind transfers as the holder runs them, a blind transfer's outbound leg to a number,
// recording, and what the end of a carrier stream means (the call moved, its stream is asked
// for again, or it is over).
//
// It is not the agents' side: sign-in, sessions, presence, routing, the notices between
// instances and the HTTP handlers are package agents, whose Hub is a held call's Host (its
// goroutines, its notices, its queue, its registry of calls and legs). A held call knows its
// agents only by id and by their Sink; it imports nothing of agents, and serves no HTTP.
//
// Locks, in the order they are taken: Call.mu, then the room's mu or a Leg's mu, both leaves
// under it (a stream's start asks its call's leg, under Call.mu, whether it still rings; a leg
// never takes its call's lock under its own). The host's lock (agents' Hub.mu) is a leaf taken
// under any of them (Go, After, Forget, TrackLeg), so the host never takes a call's lock under
// its own: it copies its calls out first. The room's clock and the hold tone run on the host's
// goroutines and call sinks and the carrier stream with no lock held.
package held
