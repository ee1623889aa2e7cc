// Package webhooks is Switchboard's carrier-facing HTTP surface: it verifies, parses and
// stores what carriers send (Twilio-style form callbacks signed with X-Twilio-Signature,
// Telnyx Call Control JSON webhooks signed with Ed25519, and both carriers' media-stream
// WebSocket frames) and answers them.
//
// This layer is pure: the verifiers and parsers here do no I/O and turn raw bytes into
// call.Event and MediaMessage values, so the HTTP handlers above them only move bytes,
// call one function and map its error to a status. Parse errors wrap ErrMalformed (answer
// 400: retrying will not help); signature failures are a false from VerifyTwilio or
// ErrSignature/ErrStale from VerifyTelnyx (answer 403). Neither ever carries a secret.
package webhooks
