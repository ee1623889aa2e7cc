// Package delivery is how the simulated carrier gets what it has to say to Switchboard: the
// one shared HTTP client every callback, webhook and TwiML fetch goes through (a bounded
// keep-alive pool that never follows a redirect, as Twilio's), each call's queue of
// callbacks sent one at a time in the order they fired, the carriers' retries, the delivery
// faults applied on the way (drops, duplicates, reordering and outages; a delay arrives as
// each callback's NotBefore), and the way each carrier signs its requests (Twilio's
// HMAC-SHA1 X-Twilio-Signature, Telnyx's Ed25519 over "timestamp|body").
//
// It is not the carrier: it knows no call, no call state and no event, parses no TwiML and
// sets no fault. Package sim builds each callback (its URL, its body and headers per
// attempt, whether busy answers are retried), says which faults are in force, and keeps the
// record of every attempt this package reports.
package delivery
