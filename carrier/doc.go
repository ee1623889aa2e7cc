// Package carrier is the carriers themselves: their configuration, the REST clients that
// place, end and look up calls, and what each answer means. It decides nothing about which
// carrier takes a call and places no call by itself; the packages that do build on it:
// carrier/dispatch (breakers, router, placer, durable actions), carrier/reconcile (the
// reconciler) and carrier/sim (a simulated carrier).
//
// It holds:
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
//   - Registry: every instance's view of the configured carriers and their clients, shared
//     through the store and reloaded when any instance changes it.
//
// Clients do not retry: a retry is a routing decision, and Result.Retryable says when one
// is safe.
package carrier
