// Package sim is a simulated carrier: one HTTP handler that speaks both carrier APIs
// Switchboard uses (Twilio's REST API with status callbacks, TwiML and Media Streams, and
// Telnyx Call Control with Ed25519-signed webhooks and media streaming), places and receives
// simulated calls with realistic lifecycles, streams a test tone over the media WebSocket, and
// injects the faults a real carrier has: REST errors, latency and hangs, lost, late,
// duplicated and reordered callbacks, and outages. Tests, load commands, failure drills and
// the one-command demo run it in-process; cmd/carriersim runs it as its own process.
//
// # Destination numbers
//
// What happens to an outbound call depends on the last digit of the number dialled:
//
//	...1  busy: initiated, then busy after the ring time (SIP 486; Telnyx user_busy)
//	...2  no answer: initiated, ringing, then no-answer when the call's timeout runs out
//	      (Twilio Timeout, default 60 s, plus Twilio's 5 s; Telnyx timeout_secs, default
//	      30 s; both capped by Config.RingTimeout) (SIP 487; Telnyx timeout)
//	...3  invalid: the create request fails and no call exists (Twilio 400 with error 21211
//	      "Invalid 'To' Phone Number"; Telnyx 422)
//	...4  rejected: initiated, ringing, then no-answer after the ring time (SIP 603;
//	      Telnyx call_rejected)
//	else  answered after the ring time (Config.Ring, default 1 s), then up until either side
//	      hangs up, or Config.HangupAfter passes if it is set
//
// Inbound calls are made on demand with Carrier.Inbound or POST /sim/inbound.
//
// # Callbacks
//
// Callbacks go out in the order they fire, one call's callbacks one at a time, through one
// shared HTTP client with a bounded keep-alive pool that never follows redirects (a 3xx is a
// failed delivery), connects within 5 s and waits at most 15 s for an answer, as Twilio does.
// A callback whose connection fails is retried once; Telnyx webhooks answered with 408, 429
// or 5xx are also retried twice with a short backoff. Twilio callbacks are signed with
// X-Twilio-Signature, Telnyx webhooks with telnyx-signature-ed25519 over "timestamp|body".
// The sending itself (client, queues, retries, delivery faults, signing) is the internal
// package delivery; this package builds each callback and keeps the record of its attempts.
//
// # Media
//
// When a call is answered the simulator obeys <Connect><Stream> (and <Start><Stream>, <Say>,
// <Pause>, <Hangup>) for Twilio, or the stream_url of a Telnyx dial or answer, opens the media
// WebSocket with that carrier's framing and sends 20 ms frames of G.711 mu-law: a tone
// (Config.ToneHz, default 1000 Hz) or, with Config.Echo, what it received. It records what it
// receives (the first 10 s of each call) and reports, per call, the frames sent, received
// and lost (gaps in the peer's chunk or sequence numbers) and the dominant frequency heard in
// the middle 200 ms of the recording, searched from 300 Hz to 3400 Hz in 5 Hz steps. With
// Config.WatchHz it also watches the whole call for a tone at that frequency and reports its
// gaps (Report.ToneGaps): the silences a caller heard.
//
// # Re-pointing a live call
//
// As the carriers do, a live call's media can be moved: a Twilio call update with Twiml or Url
// replaces the TwiML the call runs (an open <Connect><Stream> gets stop and is closed; 400 with
// 21220 on a call not in progress), and Telnyx streaming_start opens a new stream on an
// answered call (422 with 90018 once it has ended). A Twilio stream that breaks goes on with the
// TwiML after </Connect>, <Pause> included; a Telnyx call whose stream breaks stays up without
// media. The caller's tone is one generator per call, so it goes on across the switch, and a
// new stream numbers its messages and chunks from 1.
package sim
