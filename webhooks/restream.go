package webhooks

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// A Telnyx call streams its media where it was told to when the stream was asked for: an
// outbound call to the stream_url it was dialled with, once it answers. If the instance that
// dialled it has died meanwhile and another has taken the call over, the stream cannot
// connect and Telnyx reports streaming.failed (the call itself goes on). Telnyx does not
// retry a stream, so Switchboard starts it again (streaming_start) where the call's media
// goes now: a job, stored before the webhook is acknowledged, as the answer of an inbound
// call is (dispatch.Actions runs it).

// telnyxStreamingFailed is the event type of a Telnyx media stream that could not connect.
const telnyxStreamingFailed = "streaming.failed"

// telnyxFailedStreamURL reads where a streaming.failed webhook's stream was to go
// (payload.stream_params.stream_url, the parameters as given to Call Control); "" if it
// does not say.
func telnyxFailedStreamURL(body []byte) string {
	var w struct {
		Data struct {
			Payload struct {
				StreamParams struct {
					StreamURL looseString `json:"stream_url"`
				} `json:"stream_params"`
			} `json:"payload"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &w) != nil {
		return ""
	}
	return string(w.Data.Payload.StreamParams.StreamURL)
}

// oweRestream stores the job that starts a live call's Telnyx stream again where its media
// goes now, when the stream that failed (to failed) was meant for another instance. A stream
// that failed to reach the right instance is left alone: starting it again there would fail
// the same way, over and over; so is an orphan's (a carrier call of an attempt we gave up on,
// which is hung up instead). The job's id is the failure's event, so a retried webhook
// stores nothing more.
func (s *Server) oweRestream(ctx context.Context, carrier string, a store.Applied, e call.Event, failed string) error {
	if s.d.Actions == nil || a.CallID == "" || a.Parked || a.Orphan || a.State.Terminal() {
		return nil
	}
	target := s.TelnyxStreamURLAt(s.mediaBase(ctx, a.CallID), carrier, a.CallID)
	if sameStreamEndpoint(failed, target) {
		s.d.Log.Warn("a call's media stream failed where it belongs; not started again", "call", a.CallID, "carrier", carrier)
		return nil
	}
	_, err := s.d.Actions.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobRestream, a.CallID+":"+e.ID),
		Kind: store.JobRestream, CallID: a.CallID, Carrier: carrier, CarrierCallID: e.CarrierCallID,
		StreamURL: target, By: "webhook"})
	return err
}

// sameStreamEndpoint reports whether two stream URLs reach the same instance's media route
// (scheme, host and path; the query names the call and its token). An unreadable or empty
// failed URL is taken as another endpoint: the stream failed, and where it belongs is known.
func sameStreamEndpoint(failed, target string) bool {
	f, err := url.Parse(failed)
	if err != nil || failed == "" {
		return false
	}
	t, err := url.Parse(target)
	return err == nil && f.Scheme == t.Scheme && f.Host == t.Host && f.Path == t.Path
}
