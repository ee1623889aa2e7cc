// Package transfer is the transfer desk: the transfers agents and the admin ask for, on any
// instance. A blind transfer to another agent reserves the target and has it rung as the
// queue would ring it (store/agentdb's TransferOffer); a blind transfer to a number records
// the outbound leg to place; a warm transfer starts a consult, and later completes it,
// cancels it or makes it a conference. Each request checks what it can (the mode, the target,
// that the one asking has the call), changes the call's offer in Redis, and tells the
// instance holding the call's media, whose held call (package held) does the rest; the
// transferring agent's instance is told too, so its session lets go of a blind-transferred
// call at once. Refusals the agent can act on are *Error, with the signalling protocol's
// codes.
//
// It is not the transfer itself (ringing, the hold tone, the number leg, the room: package
// held) nor the softphone's commands (package agents). It holds no lock and no goroutine.
package transfer
