// Package dispatch decides which carrier takes each call and sends carriers the requests we
// owe them. It is the carrier side's running part, built on package carrier's registry and
// clients:
//
//   - Breakers: one circuit breaker per carrier (gobreaker), shared by every instance through
//     the store, with callback liveness (a carrier that takes calls and never calls back is
//     sick too).
//   - Router: the order in which a call tries the carriers (priority, weight, breakers).
//   - Placer: places an outbound call, failing over from carrier to carrier, and hangs up the
//     orphans an abandoned attempt may have created.
//   - Actions: the durable jobs owed to a carrier after we acknowledged something (answer,
//     hang up, reject), done by whichever instance claims them.
//
// It is not the carriers' configuration or REST API (package carrier), nor the reconciler
// that checks quiet calls (carrier/reconcile).
package dispatch
