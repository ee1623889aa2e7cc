package webhooks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// MediaKind is what a media-stream WebSocket frame is. The zero value is MediaUnknown: a
// frame with an event name we do not know, which the stream handler ignores.
type MediaKind int8

const (
	MediaUnknown   MediaKind = iota
	MediaConnected           // the first frame on a new socket
	MediaStart               // once, before audio: which call, which stream, our parameters
	MediaAudio               // a chunk of audio ("media" on the wire)
	MediaDTMF                // a digit the far end pressed
	MediaMark                // a mark we sent has played (or was cleared)
	MediaStop                // the stream is over
	MediaError               // the carrier reports a problem with the stream
)

var mediaKindNames = [...]string{
	MediaUnknown:   "unknown",
	MediaConnected: "connected",
	MediaStart:     "start",
	MediaAudio:     "media",
	MediaDTMF:      "dtmf",
	MediaMark:      "mark",
	MediaStop:      "stop",
	MediaError:     "error",
}

// String returns the frame's event name on the wire.
func (k MediaKind) String() string {
	if k < 0 || int(k) >= len(mediaKindNames) {
		return mediaKindNames[MediaUnknown]
	}
	return mediaKindNames[k]
}

// mediaKindOf reads a frame's event name; both carriers use the same names.
func mediaKindOf(event []byte) MediaKind {
	for k, name := range mediaKindNames {
		if k != int(MediaUnknown) && string(event) == name {
			return MediaKind(k)
		}
	}
	return MediaUnknown
}

// MediaMessage is one frame of a Twilio or Telnyx media stream, carrier-neutral. One
// value is meant to be reused for every frame of a stream: the parsers keep Payload's
// capacity and the StreamID string, so steady-state audio frames allocate nothing.
type MediaMessage struct {
	Kind          MediaKind
	StreamID      string            // streamSid / stream_id
	CallID        string            // our call id, on start: the sb_call parameter, or Telnyx client_state
	CarrierCallID string            // callSid / call_control_id, on start and stop
	Params        map[string]string // custom parameters, on start
	Encoding      string            // on start: "audio/x-mulaw" (Twilio, always), "PCMU", "PCMA"... (Telnyx)
	Payload       []byte            // decoded audio in Encoding, for MediaAudio
	Track         string            // "inbound"/"outbound" (on start, the tracks joined by ',')
	Chunk         int
	Timestamp     int64  // ms since the stream started
	Sequence      int64  // sequenceNumber / sequence_number; frames may arrive out of order
	Digit         string // MediaDTMF
	Mark          string // MediaMark
	Detail        string // MediaError: the carrier's error title and code
}

// ParseTwilioMedia reads one Twilio Media Streams frame into dst, reusing dst.Payload's
// capacity. Frames with an unknown event are MediaUnknown, not an error; malformed JSON,
// a known field of the wrong type, bad base64 audio or a malformed sb_call parameter is
// an error wrapping ErrMalformed, and leaves dst holding part of the frame.
func ParseTwilioMedia(raw []byte, dst *MediaMessage) error {
	return parseMedia(raw, dst, &twilioMedia)
}

// ParseTelnyxMedia reads one Telnyx media streaming frame into dst, as ParseTwilioMedia.
func ParseTelnyxMedia(raw []byte, dst *MediaMessage) error {
	return parseMedia(raw, dst, &telnyxMedia)
}

// mediaDialect is what differs between the carriers' frames: the spelling of two
// top-level keys, and the shape of the rare frames decoded with encoding/json.
type mediaDialect struct {
	streamKey, seqKey string
	errorKey          string // top-level key of an error frame's details; "" if none
	start, stop       func(raw []byte, m *MediaMessage) error
	errorDetails      func(raw []byte, m *MediaMessage) error
}

var (
	twilioMedia = mediaDialect{
		streamKey: "streamSid", seqKey: "sequenceNumber",
		start: decodeTwilioStart, stop: decodeTwilioStop,
	}
	telnyxMedia = mediaDialect{
		streamKey: "stream_id", seqKey: "sequence_number", errorKey: "payload",
		start: decodeTelnyxStart, stop: decodeTelnyxStop, errorDetails: decodeTelnyxError,
	}
)

func parseMedia(raw []byte, dst *MediaMessage, d *mediaDialect) error {
	prevStream := dst.StreamID
	*dst = MediaMessage{Payload: dst.Payload[:0]}

	s := jsonScanner{data: raw}
	if !s.object("frame") {
		if s.err == nil {
			s.fail("frame is null")
		}
		return s.err
	}
	var event, stream, payload []byte
	var startRaw, stopRaw, errRaw []byte
	for n := 0; ; {
		key, ok := s.member(&n)
		if !ok {
			break
		}
		var v []byte
		switch string(key) {
		case "event":
			event, _ = s.str("event")
		case d.streamKey:
			stream, _ = s.str(d.streamKey)
		case d.seqKey:
			dst.Sequence, _ = s.intValue(d.seqKey)
		case "media":
			payload = s.mediaObject(dst)
		case "dtmf":
			if s.object("dtmf") {
				for n := 0; ; {
					k, ok := s.member(&n)
					if !ok {
						break
					}
					switch string(k) {
					case "digit":
						v, _ = s.str("dtmf.digit")
						dst.Digit = string(v)
					case "track":
						v, _ = s.str("dtmf.track")
						dst.Track = trackName(v)
					default:
						s.skip(3)
					}
				}
			}
		case "mark":
			if s.object("mark") {
				for n := 0; ; {
					k, ok := s.member(&n)
					if !ok {
						break
					}
					if string(k) == "name" {
						v, _ = s.str("mark.name")
						dst.Mark = string(v)
					} else {
						s.skip(3)
					}
				}
			}
		case "start":
			startRaw = s.raw()
		case "stop":
			stopRaw = s.raw()
		default:
			if d.errorKey != "" && string(key) == d.errorKey {
				errRaw = s.raw()
			} else {
				s.skip(2)
			}
		}
		if s.err != nil {
			return s.err
		}
	}
	if s.end(); s.err != nil {
		return s.err
	}

	dst.Kind = mediaKindOf(event)
	if len(stream) > 0 {
		if string(stream) == prevStream {
			dst.StreamID = prevStream
		} else {
			dst.StreamID = string(stream)
		}
	}
	var err error
	switch dst.Kind {
	case MediaAudio:
		dst.Payload = slices.Grow(dst.Payload, base64.StdEncoding.DecodedLen(len(payload)))
		var n int
		n, err = base64.StdEncoding.Decode(dst.Payload[:cap(dst.Payload)], payload)
		if err != nil {
			return fmt.Errorf("%w: media.payload is not base64", ErrMalformed)
		}
		dst.Payload = dst.Payload[:n]
	case MediaStart:
		if startRaw != nil {
			err = d.start(startRaw, dst)
		}
	case MediaStop:
		if stopRaw != nil {
			err = d.stop(stopRaw, dst)
		}
	case MediaError:
		if errRaw != nil && d.errorDetails != nil {
			err = d.errorDetails(errRaw, dst)
		}
	}
	return err
}

// mediaObject reads a "media" member into dst and returns the still-encoded payload.
func (s *jsonScanner) mediaObject(dst *MediaMessage) (payload []byte) {
	if !s.object("media") {
		return nil
	}
	for n := 0; ; {
		k, ok := s.member(&n)
		if !ok {
			return payload
		}
		switch string(k) {
		case "payload":
			payload, _ = s.str("media.payload")
		case "track":
			v, _ := s.str("media.track")
			dst.Track = trackName(v)
		case "chunk":
			c, _ := s.intValue("media.chunk")
			dst.Chunk = int(c)
		case "timestamp":
			dst.Timestamp, _ = s.intValue("media.timestamp")
		default:
			s.skip(3)
		}
	}
}

// trackName returns the carriers' track names as constants, so that reading a track
// allocates nothing.
func trackName(b []byte) string {
	for _, name := range [...]string{"inbound", "outbound", "inbound_track", "outbound_track", "both_tracks"} {
		if string(b) == name {
			return name
		}
	}
	return string(b)
}

// startParams fills the start-frame fields both carriers share. An sb_call parameter is
// our own call id, handed to the carrier in TwiML <Parameter> or stream parameters: a
// malformed one means the frame is not for a call we placed, so it is an error.
func startParams(params map[string]looseString, dst *MediaMessage) error {
	if len(params) > 0 {
		dst.Params = make(map[string]string, len(params))
		for k, v := range params {
			dst.Params[k] = string(v)
		}
	}
	if id, ok := dst.Params["sb_call"]; ok {
		if !isCallID(id) {
			return &FormError{Field: "start.customParameters.sb_call", Reason: "not a call id"}
		}
		dst.CallID = id
	}
	return nil
}

func decodeJSON(raw []byte, v any, what string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		// encoding/json's message quotes the input; keep it out.
		return fmt.Errorf("%w: %s is not in the expected shape", ErrMalformed, what)
	}
	return nil
}

func decodeTwilioStart(raw []byte, dst *MediaMessage) error {
	var st struct {
		StreamSid        string                 `json:"streamSid"`
		CallSid          string                 `json:"callSid"`
		Tracks           []string               `json:"tracks"`
		CustomParameters map[string]looseString `json:"customParameters"`
		MediaFormat      struct {
			Encoding looseString `json:"encoding"`
		} `json:"mediaFormat"`
	}
	if err := decodeJSON(raw, &st, "start"); err != nil {
		return err
	}
	if dst.StreamID == "" {
		dst.StreamID = st.StreamSid
	}
	dst.CarrierCallID = st.CallSid
	dst.Track = strings.Join(st.Tracks, ",")
	dst.Encoding = string(st.MediaFormat.Encoding)
	return startParams(st.CustomParameters, dst)
}

func decodeTwilioStop(raw []byte, dst *MediaMessage) error {
	var st struct {
		CallSid string `json:"callSid"`
	}
	if err := decodeJSON(raw, &st, "stop"); err != nil {
		return err
	}
	dst.CarrierCallID = st.CallSid
	return nil
}

func decodeTelnyxStart(raw []byte, dst *MediaMessage) error {
	var st struct {
		CallControlID    string                 `json:"call_control_id"`
		ClientState      looseString            `json:"client_state"`
		CustomParameters map[string]looseString `json:"custom_parameters"`
		MediaFormat      struct {
			Encoding looseString `json:"encoding"`
		} `json:"media_format"`
	}
	if err := decodeJSON(raw, &st, "start"); err != nil {
		return err
	}
	dst.CarrierCallID = st.CallControlID
	dst.Encoding = string(st.MediaFormat.Encoding)
	if err := startParams(st.CustomParameters, dst); err != nil {
		return err
	}
	if dst.CallID == "" {
		dst.CallID = telnyxClientCallID(string(st.ClientState))
	}
	return nil
}

func decodeTelnyxStop(raw []byte, dst *MediaMessage) error {
	var st struct {
		CallControlID string `json:"call_control_id"`
	}
	if err := decodeJSON(raw, &st, "stop"); err != nil {
		return err
	}
	dst.CarrierCallID = st.CallControlID
	return nil
}

func decodeTelnyxError(raw []byte, dst *MediaMessage) error {
	var e struct {
		Code  looseString `json:"code"`
		Title looseString `json:"title"`
	}
	if err := decodeJSON(raw, &e, "payload"); err != nil {
		return err
	}
	dst.Detail = strings.TrimSpace(clipToken(string(e.Title), 40) + " " + clipToken(string(e.Code), 16))
	return nil
}

// AppendTwilioMedia appends a Media Streams frame that plays ulaw (G.711 mu-law, 8 kHz)
// on a bidirectional stream: {"event":"media","streamSid":...,"media":{"payload":...}}.
func AppendTwilioMedia(buf []byte, streamSID string, ulaw []byte) []byte {
	buf = append(buf, `{"event":"media","streamSid":`...)
	buf = appendJSONString(buf, streamSID)
	buf = append(buf, `,"media":{"payload":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, ulaw)
	return append(buf, `"}}`...)
}

// AppendTwilioMark appends a mark frame: Twilio echoes it back once the audio sent before
// it has played, or was cleared.
func AppendTwilioMark(buf []byte, streamSID, name string) []byte {
	buf = append(buf, `{"event":"mark","streamSid":`...)
	buf = appendJSONString(buf, streamSID)
	buf = append(buf, `,"mark":{"name":`...)
	buf = appendJSONString(buf, name)
	return append(buf, `}}`...)
}

// AppendTwilioClear appends a clear frame: Twilio drops the audio it has buffered (barge-in)
// and returns the pending marks.
func AppendTwilioClear(buf []byte, streamSID string) []byte {
	buf = append(buf, `{"event":"clear","streamSid":`...)
	buf = appendJSONString(buf, streamSID)
	return append(buf, '}')
}

// AppendTelnyxMedia appends a Telnyx bidirectional (RTP mode) media frame carrying ulaw:
// {"event":"media","media":{"payload":...}}. Telnyx knows the stream from the socket.
func AppendTelnyxMedia(buf []byte, ulaw []byte) []byte {
	buf = append(buf, `{"event":"media","media":{"payload":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, ulaw)
	return append(buf, `"}}`...)
}

// AppendTelnyxMark appends a Telnyx mark frame, echoed back as AppendTwilioMark's is.
func AppendTelnyxMark(buf []byte, name string) []byte {
	buf = append(buf, `{"event":"mark","mark":{"name":`...)
	buf = appendJSONString(buf, name)
	return append(buf, `}}`...)
}

// AppendTelnyxClear appends a Telnyx clear frame.
func AppendTelnyxClear(buf []byte) []byte {
	return append(buf, `{"event":"clear"}`...)
}
