package sim

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// Stats counts what the carrier did since it started. A callback is anything the carrier
// sends Switchboard without needing an answer: Twilio status callbacks and Telnyx webhooks.
type Stats struct {
	CallsCreated int64 `json:"calls_created"`
	// CallbacksSent counts HTTP attempts, retries and duplicates included; each ends
	// delivered (2xx) or failed (an error, a timeout, or any other status, 3xx included).
	CallbacksSent       int64 `json:"callbacks_sent"`
	CallbacksDelivered  int64 `json:"callbacks_delivered"`
	CallbacksFailed     int64 `json:"callbacks_failed"`
	CallbacksRetried    int64 `json:"callbacks_retried"`
	CallbacksDuplicated int64 `json:"callbacks_duplicated"`
	// CallbacksDropped counts callbacks never sent because of a drop fault or an outage.
	CallbacksDropped int64 `json:"callbacks_dropped"`
	// RedirectsSeen counts 3xx answers, to callbacks and TwiML fetches; none is followed.
	RedirectsSeen int64 `json:"redirects_seen"`
	// TCPConnectionsOpened counts the connections the callback client opened (callbacks and
	// TwiML fetches share it); with keep-alive it stays far below the number of requests.
	TCPConnectionsOpened int64 `json:"tcp_connections_opened"`
	// VoiceRequests and VoiceFailed count TwiML fetches (Twilio voice webhooks and Url).
	VoiceRequests int64 `json:"voice_requests"`
	VoiceFailed   int64 `json:"voice_failed"`
	MediaStreams  int64 `json:"media_streams"`
	// Repoints counts live calls whose media was re-pointed: a Twilio call update with Twiml
	// or Url, a Telnyx streaming_start on an answered call.
	Repoints           int64 `json:"repoints"`
	RESTRequests       int64 `json:"rest_requests"`
	RESTErrorsInjected int64 `json:"rest_errors_injected"`
	// CallsByStatus counts ended calls by final status (Twilio's status names for both kinds).
	CallsByStatus map[string]int64 `json:"calls_by_status"`
	// CallbacksByEvent counts callbacks fired, by CallStatus or Telnyx event_type.
	CallbacksByEvent map[string]int64 `json:"callbacks_by_event"`
	// CallbackHTTPStatus counts callback attempts by the HTTP status received ("error" when
	// none was).
	CallbackHTTPStatus map[string]int64 `json:"callback_http_status"`
}

func newStats() Stats {
	return Stats{
		CallsByStatus:      map[string]int64{},
		CallbacksByEvent:   map[string]int64{},
		CallbackHTTPStatus: map[string]int64{},
	}
}

// Stats returns a snapshot of the counters.
func (c *Carrier) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	s.CallsByStatus = maps.Clone(s.CallsByStatus)
	s.CallbacksByEvent = maps.Clone(s.CallbacksByEvent)
	s.CallbackHTTPStatus = maps.Clone(s.CallbackHTTPStatus)
	c.mu.Unlock()
	s.TCPConnectionsOpened = c.out.Conns()
	return s
}

// Delivery is one callback attempt, or one callback dropped by a fault.
type Delivery struct {
	Kind    Kind   `json:"kind"`
	CallSID string `json:"call_sid"`
	// EventID identifies the event across retries and duplicates: for Twilio
	// "CallSid:SequenceNumber:CallStatus", for Telnyx the webhook's data.id.
	EventID string `json:"event_id"`
	// Event is the Twilio CallStatus or the Telnyx event_type.
	Event string `json:"event"`
	// SequenceNumber is the Twilio SequenceNumber; -1 for Telnyx.
	SequenceNumber int    `json:"sequence_number"`
	URL            string `json:"url"`
	// Attempt counts from 1; above 1 it is a retry.
	Attempt   int  `json:"attempt"`
	Duplicate bool `json:"duplicate,omitempty"`
	Dropped   bool `json:"dropped,omitempty"`
	// StatusCode is the HTTP status received, 0 when none was.
	StatusCode int `json:"status_code"`
	// Acked is true when Switchboard answered 2xx: it promised the event is stored.
	Acked bool      `json:"acked"`
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// Delivered lists every callback attempt and drop so far, in the order they happened.
func (c *Carrier) Delivered() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.deliveries)
}

func (c *Carrier) record(d Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deliveries = append(c.deliveries, d)
	s := &c.stats
	if d.Dropped {
		s.CallbacksDropped++
		return
	}
	s.CallbacksSent++
	if d.Acked {
		s.CallbacksDelivered++
	} else {
		s.CallbacksFailed++
	}
	if d.Attempt > 1 {
		s.CallbacksRetried++
	}
	if d.Duplicate && d.Attempt == 1 {
		s.CallbacksDuplicated++
	}
	code := "error"
	if d.StatusCode != 0 {
		code = strconv.Itoa(d.StatusCode)
	}
	s.CallbackHTTPStatus[code]++
}
