package sim

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard/switchboard/webrtc/media"
)

const (
	frameInterval = 20 * time.Millisecond
	recordLimit   = 10 * media.SampleRate // the audio kept per call: its first 10 s
	echoLimit     = media.SampleRate      // the most audio waiting to be echoed: 1 s
	wsWriteWait   = 5 * time.Second
	wsCloseWait   = time.Second
	analysisLen   = 1600 // 200 ms: 5 Hz Goertzel bins
)

// streamSpec is a media stream to open: where, with which carrier's framing, and what to
// tell the peer in the start message.
type streamSpec struct {
	kind   Kind
	url    string
	params map[string]string // Twilio <Parameter>s, sent as start.customParameters
}

// mediaStats is what a call's media streams did; it lives under call.mu.
type mediaStats struct {
	url            string // the last stream opened
	streams        int
	open           int
	framesSent     int
	framesReceived int
	framesLost     int
	bytesReceived  int
	marks          int
	clears         int
	digitsSent     string
	// recorded is the start of what the call heard, until the call ends and only what
	// the report needs of it is kept: the dominant frequency and its power.
	recorded          []byte
	ended             bool
	hz, power         float64
	loudHz, loudPower float64
	// Frames lost are gaps in the peer's media.chunk numbers when it numbers its frames
	// (chunked), otherwise gaps in its messages' sequence numbers.
	chunked   bool
	lastChunk int
	lastSeq   int
	// watch, with Config.WatchHz, times the tone's gaps over the whole call.
	watch *media.ToneWatch
}

// stream runs one media WebSocket for the call until the peer closes it or ctx ends (the
// call is over), then says stop and closes.
func (k *call) stream(ctx context.Context, spec streamSpec) {
	h := http.Header{}
	if spec.kind == Twilio {
		h.Set("X-Twilio-Signature", TwilioSignature(k.c.cfg.AuthToken, spec.url, nil))
	}
	dialer := websocket.Dialer{HandshakeTimeout: connectTimeout}
	conn, resp, err := dialer.DialContext(ctx, spec.url, h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // gorilla has read what it needs; the body of a refusal is not used
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		k.note(fmt.Sprintf("31920: media stream %s failed: %v", spec.url, err))
		if spec.kind == Telnyx {
			// As Telnyx reports it: a reason from its short list (the detail is in the note).
			k.telnyxWebhook("streaming.failed", func(p *telnyxPayload) {
				p.FailureReason, p.StreamID, p.StreamType = "connection_failed", newUUID(), "websocket"
				p.StreamParams = &telnyxStreamParams{StreamURL: spec.url, Track: "inbound_track"}
			})
		}
		return
	}
	k.c.count(func(s *Stats) { s.MediaStreams++ })
	k.mu.Lock()
	k.media.url = spec.url
	k.media.streams++
	k.media.open++
	// A new stream numbers its messages and chunks from 1 again, as the carriers' do.
	k.media.chunked, k.media.lastChunk, k.media.lastSeq = false, 0, 0
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.media.open--
		k.mu.Unlock()
	}()
	s := &session{k: k, conn: conn, spec: spec, marks: make(chan string, 64)}
	if spec.kind == Twilio {
		s.id, s.seqKey, s.idKey = "MZ"+randomHex(16), "sequenceNumber", "streamSid"
	} else {
		s.id, s.seqKey, s.idKey = newUUID(), "sequence_number", "stream_id"
		k.telnyxWebhook("streaming.started", func(p *telnyxPayload) { p.StreamURL = spec.url })
		defer k.telnyxWebhook("streaming.stopped", func(p *telnyxPayload) { p.StreamURL = spec.url })
	}
	s.run(ctx)
}

// session is one open media WebSocket. run owns the connection's writes; read, its one
// other goroutine, owns the reads.
type session struct {
	k    *call
	conn *websocket.Conn
	spec streamSpec
	// Twilio numbers messages in sequenceNumber and names the stream in streamSid;
	// Telnyx uses sequence_number and stream_id.
	id, seqKey, idKey string
	seq               int // our last sequence number
	chunk             int // our last media chunk
	frame             [media.FrameSamples]byte
	buf               []byte
	marks             chan string // marks received, to echo back

	mu   sync.Mutex
	echo []byte
}

func (s *session) run(ctx context.Context) {
	readerDone := make(chan struct{})
	defer func() {
		_ = s.conn.Close() // the stream is over; a socket that closes badly is closed all the same
		<-readerDone
	}()
	go func() {
		defer close(readerDone)
		s.read()
	}()
	if err := s.start(); err != nil {
		s.k.note("media stream start: " + err.Error())
		return
	}
	ticker := time.NewTicker(frameInterval)
	defer ticker.Stop()
	for {
		var err error
		select {
		case <-ticker.C:
			err = s.sendFrame()
		case name := <-s.marks:
			err = s.send("mark", "mark", map[string]string{"name": name})
		case d := <-s.k.digits:
			err = s.sendDigit(d)
		case <-readerDone: // Switchboard closed the stream
			return
		case <-ctx.Done():
			s.stop()
			_ = s.conn.SetReadDeadline(time.Now().Add(wsCloseWait)) // a closed socket fails the read it bounds
			<-readerDone
			return
		}
		if err != nil {
			return
		}
	}
}

func (s *session) start() error {
	k := s.k
	if s.spec.kind == Twilio {
		if err := s.write(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"}); err != nil {
			return err
		}
		return s.send("start", "start", map[string]any{
			"accountSid": k.c.cfg.AccountSID, "streamSid": s.id, "callSid": k.sid, "tracks": []string{"inbound"},
			"mediaFormat":      map[string]any{"encoding": "audio/x-mulaw", "sampleRate": media.SampleRate, "channels": 1},
			"customParameters": s.spec.params,
		})
	}
	if err := s.write(map[string]any{"event": "connected", "version": "1.0.0"}); err != nil {
		return err
	}
	k.mu.Lock()
	clientState := k.clientState
	k.mu.Unlock()
	return s.send("start", "start", map[string]any{
		"user_id": k.c.userID, "call_control_id": k.sid, "call_session_id": k.sessionID, "client_state": clientState,
		"from": k.from, "to": k.to,
		"media_format": map[string]any{"encoding": "PCMU", "sample_rate": media.SampleRate, "channels": 1},
	})
}

// sendFrame sends the next 20 ms of audio. It runs 50 times a second per call, so the
// message is assembled by hand in a reused buffer: its fields are digits, base64 and an id,
// none of which needs escaping.
func (s *session) sendFrame() error {
	frame := s.frame[:]
	if k := s.k; k.tone != nil {
		k.toneMu.Lock()
		_, _ = k.tone.Read(frame) // a tone never runs out and never fails
		k.toneMu.Unlock()
	} else {
		s.mu.Lock()
		n := copy(frame, s.echo)
		s.echo = s.echo[n:]
		s.mu.Unlock()
		for i := n; i < len(frame); i++ {
			frame[i] = media.Silence
		}
	}
	s.chunk++
	s.seq++
	b := append(s.buf[:0], `{"event":"media","`...)
	b = append(append(b, s.seqKey...), `":"`...)
	b = strconv.AppendInt(b, int64(s.seq), 10)
	b = append(b, `","media":{"track":"inbound","chunk":"`...)
	b = strconv.AppendInt(b, int64(s.chunk), 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, int64(s.chunk-1)*frameInterval.Milliseconds(), 10)
	b = append(b, `","payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, frame)
	b = append(append(b, `"},"`...), s.idKey...)
	b = append(append(append(b, `":"`...), s.id...), `"}`...)
	s.buf = b
	if err := s.writeRaw(b); err != nil {
		return err
	}
	s.k.mu.Lock()
	s.k.media.framesSent++
	s.k.mu.Unlock()
	return nil
}

func (s *session) sendDigit(d string) error {
	body := map[string]string{"digit": d}
	if s.spec.kind == Twilio {
		body["track"] = "inbound_track"
	}
	if err := s.send("dtmf", "dtmf", body); err != nil {
		return err
	}
	s.k.mu.Lock()
	s.k.media.digitsSent += d
	s.k.mu.Unlock()
	return nil
}

// stop says the stream is over and starts the closing handshake.
func (s *session) stop() {
	body := map[string]string{"callSid": s.k.sid, "accountSid": s.k.c.cfg.AccountSID}
	if s.spec.kind == Telnyx {
		body = map[string]string{"user_id": s.k.c.userID, "call_control_id": s.k.sid}
	}
	if s.send("stop", "stop", body) == nil {
		_ = s.conn.WriteControl(websocket.CloseMessage, // best effort: the peer may be gone, and the close goes on without it
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "call ended"), time.Now().Add(wsWriteWait))
	}
}

// send writes one numbered message in the stream's framing.
func (s *session) send(event, key string, body any) error {
	s.seq++
	return s.write(map[string]any{"event": event, key: body, s.seqKey: strconv.Itoa(s.seq), s.idKey: s.id})
}

func (s *session) write(m map[string]any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.writeRaw(b)
}

func (s *session) writeRaw(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(wsWriteWait)) // a closed socket fails the write it bounds
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// peerMessage is what Switchboard may send on a media stream, in either framing.
type peerMessage struct {
	Event          string `json:"event"`
	SequenceNumber string `json:"sequenceNumber"`
	SeqTelnyx      string `json:"sequence_number"`
	Media          struct {
		Payload string `json:"payload"`
		Chunk   string `json:"chunk"`
	} `json:"media"`
	Mark struct {
		Name string `json:"name"`
	} `json:"mark"`
}

func (s *session) read() {
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		var m peerMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		s.k.mu.Lock()
		st := &s.k.media
		if v, err := strconv.Atoi(cmp.Or(m.SequenceNumber, m.SeqTelnyx)); err == nil {
			if !st.chunked {
				st.framesLost += gap(st.lastSeq, v)
			}
			st.lastSeq = max(st.lastSeq, v)
		}
		switch m.Event {
		case "media":
			payload, err := base64.StdEncoding.DecodeString(m.Media.Payload)
			if err != nil {
				break
			}
			if v, err := strconv.Atoi(m.Media.Chunk); err == nil {
				st.chunked = true
				st.framesLost += gap(st.lastChunk, v)
				st.lastChunk = max(st.lastChunk, v)
			}
			st.framesReceived++
			st.bytesReceived += len(payload)
			if st.watch != nil && !st.ended {
				st.watch.Frame(time.Now(), payload)
			}
			if !st.ended {
				st.recorded = append(st.recorded, payload[:min(len(payload), recordLimit-len(st.recorded))]...)
			}
			if s.k.tone == nil {
				s.mu.Lock()
				s.echo = append(s.echo, payload...)
				if over := len(s.echo) - echoLimit; over > 0 {
					s.echo = s.echo[over:]
				}
				s.mu.Unlock()
			}
		case "mark":
			st.marks++
			select {
			case s.marks <- m.Mark.Name:
			default:
			}
		case "clear":
			st.clears++
			s.mu.Lock()
			s.echo = nil
			s.mu.Unlock()
		}
		s.k.mu.Unlock()
	}
}

// gap is how many running numbers were skipped between last and n.
func gap(last, n int) int {
	if last > 0 && n > last+1 {
		return n - last - 1
	}
	return 0
}

// dominant finds the strongest frequency in the middle 200 ms of what the call heard.
func (m *mediaStats) dominant() (freq, power float64) {
	rec := m.recorded
	if m.ended || len(rec) < media.FrameSamples {
		return m.hz, m.power
	}
	if len(rec) > analysisLen {
		mid := len(rec) / 2
		rec = rec[mid-analysisLen/2 : mid+analysisLen/2]
	}
	return media.DominantFrequency(rec, media.VoiceBand(5))
}

// loudest finds the strongest frequency in the loudest 200 ms of what the call heard,
// stepping 100 ms at a time. Only the loudest window is analysed, so it costs one pass over
// the audio's energy and one Goertzel sweep.
func (m *mediaStats) loudest() (freq, power float64) {
	rec := m.recorded
	if m.ended || len(rec) < analysisLen {
		return m.loudHz, m.loudPower
	}
	best, bestEnergy := 0, int64(-1)
	for start := 0; start+analysisLen <= len(rec); start += analysisLen / 2 {
		var energy int64
		for _, b := range rec[start : start+analysisLen] {
			v := int64(media.DecodeUlaw(b))
			energy += v * v
		}
		if energy > bestEnergy {
			best, bestEnergy = start, energy
		}
	}
	return media.DominantFrequency(rec[best:best+analysisLen], media.VoiceBand(5))
}

// end keeps the dominant and loudest frequencies of a call that is over, and lets go of its
// audio; a tone absent at the end makes a last gap.
func (m *mediaStats) end(at time.Time) {
	m.hz, m.power = m.dominant()
	m.loudHz, m.loudPower = m.loudest()
	m.recorded, m.ended = nil, true
	if m.watch != nil {
		m.watch.Finish(at)
	}
}
