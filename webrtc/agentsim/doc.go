// Package agentsim simulates an agent, as carrier/sim simulates a carrier: SimAgent is a pion
// peer that behaves like an agent's browser (it makes the offer, speaks a tone in paced 20 ms
// PCMU packets, sends its keypad as RFC 4733 events and records what it hears), and
// SimSoftphone signs an agent in over the signalling WebSocket and negotiates a SimAgent the
// way the softphone page does, speaking the protocol of docs/agents.md.
//
// Tests, the load commands (cmd/bridgeload) and the incident drill use it where a headless
// browser would be too slow or too many. It is not used by the server.
package agentsim
