// Package carrier places and ends calls through carriers' REST APIs, decides which carrier
// takes a call, and notices when a carrier is sick (breakers, failover, callback liveness).
//
// This file set holds the parts every other piece stands on:
//
//   - Config: one carrier as the admin configures it, with its secrets kept write-only
//     (Public for anything that leaves the process, MergeSecrets for updates).
//   - TwilioClient and TelnyxClient: one HTTP request per operation against the carrier's
//     REST API, bounded in time and size, never following redirects. Both satisfy Client.
//   - Outcome and Result: what an answer from a carrier means for the call and for the
//     carrier. Accepted: the carrier took the call. CarrierFault: this carrier failed us;
//     try the next one now and count it against this carrier's breaker. Final: stop; no
//     other carrier would do better (busy, declined, invalid number, the caller gave up).
//     ClassifyEnding applies the same three answers to how a placed call later ended.
//
// The router, the breakers and callback liveness build on these and live beside them.
// Clients do not retry: a retry is a routing decision, and Result.Retryable says when one
// is safe.
package carrier
