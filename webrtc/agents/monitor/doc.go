// Package monitor is a supervisor's monitoring of a live call: the monitor WebSocket (its
// protocol: the first message with the staff token, the call and the mode; mode changes;
// offer and candidates for the supervisor's PeerConnection), the monitor's leg in the call's
// room on the instance holding the call's media (package held), and the relay that carries
// that leg from another instance. A supervisor (or the admin) listens to a live call,
// whispers to its agent, or barges in. The mode is the leg's role in the room's mixer, so
// switching it is a change of who hears whom, not a renegotiation:
//
//	listen   media.RoleListen   hears the caller and the agent; nobody hears it
//	whisper  media.RoleWhisper  hears both; only the call's agent hears it
//	barge    media.RoleTalk     all hear all
//
// A monitor is no agent session: it never rings, never changes anyone's presence and never
// takes a call. A monitor leaving takes its leg out of the room; back to two legs the call is
// the plain relay it was. The monitor never ends the call.
//
// It is not the agents' hub (package agents), which serves it as Hub.HandleMonitor and is its
// Host: where a call is held, the relays between instances, the sockets' writers. Locks: a
// monitor's own lock is a leaf; it calls the held call (AddLeg, SetMonitorRole, RemoveLeg),
// its host and its socket with no lock held, and the held call calls it (as the room's Sink)
// with none of its own.
package monitor
