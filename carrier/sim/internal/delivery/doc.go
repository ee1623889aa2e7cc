// Package delivery is how the simulated carrier gets what it has to say to Switchboard:
// the one shared HTTP client every callback, webhook and TwiML fetch goes through (a
// bounded keep-alive pool that never follows a redirect, as Twilio's), each call's queue
// of callbacks sent one at a time in the order they fired, each carrier's retries, the
// delivery faults applied on the way (drops, duplicates, reordering, outages), and the
// signatures both carriers put on their requests (Twilio's HMAC-SHA1 X-Twilio-Signature,
// Telnyx's Ed25519 over "timestamp|body").
//
// It is not the carrier: it knows no call, no carrier kind, no TwiML and no Telnyx event.
// Package sim builds each callback (its URL, its body and headers per attempt, whether
// busy answers are retried), decides the faults and keeps the record of every attempt;
// this package only sends, and reports what became of each attempt.
package delivery
