package sim

import (
	"net/http"
	"net/url"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
)

// connectTimeout bounds a media WebSocket's handshake as the callback client's connect is
// bounded: 5 s, as Twilio's.
const connectTimeout = delivery.ConnectTimeout

// TwilioSignature computes X-Twilio-Signature the way Twilio does: the URL exactly as given
// (query included, fragment excluded), then every POST parameter's name and value appended
// with no delimiter, sorted by name and then by value, signed with HMAC-SHA1 keyed with the
// auth token, base64-encoded. For a GET, or a WebSocket handshake, params is nil.
func TwilioSignature(authToken, rawURL string, params url.Values) string {
	return delivery.TwilioSignature(authToken, rawURL, params)
}

// callback is one status callback or webhook as the carrier knows it: what its record says,
// and how each attempt is rendered. queue hands it to the call's delivery queue.
type callback struct {
	kind    Kind
	callSID string
	eventID string
	event   string
	seq     int
	method  string
	url     string
	// render returns the body and headers of an attempt; Telnyx bodies carry the attempt.
	render func(attempt int) ([]byte, http.Header)
}

// newSender returns the carrier's one client for everything it sends Switchboard, with the
// delivery faults in force, the seeded chance, and every redirect counted and logged.
func newSender(c *Carrier) *delivery.Sender {
	return delivery.New(delivery.Options{
		Faults: func() delivery.Faults {
			f, out := c.faultsNow()
			return delivery.Faults{
				Out: out, DropRate: f.CallbackDropRate, DuplicateRate: f.DuplicateRate,
				Reorder: f.Reorder, ReorderHold: f.ReorderHold,
			}
		},
		Chance: c.chance,
		Redirected: func(url string, status int, location string) {
			c.count(func(st *Stats) { st.RedirectsSeen++ })
			c.log.Warn("redirect answered, not followed", "url", url, "status", status, "location", location)
		},
	})
}

// recordAttempt keeps what became of one attempt at cb, or of cb dropped by a fault.
func (c *Carrier) recordAttempt(cb *callback, r delivery.Result) {
	d := Delivery{
		Kind: cb.kind, CallSID: cb.callSID, EventID: cb.eventID, Event: cb.event,
		SequenceNumber: cb.seq, URL: cb.url, Attempt: r.Attempt, Duplicate: r.Duplicate,
		Dropped: r.Dropped, StatusCode: r.Status, Acked: r.Acked, At: r.At,
	}
	if r.Err != nil {
		d.Error = r.Err.Error()
	}
	c.record(d)
	if !r.Dropped && !r.Acked {
		c.log.Warn("callback failed", "url", cb.url, "call", cb.callSID, "event", cb.event,
			"attempt", r.Attempt, "status", r.Status, "err", r.Err)
	}
}
