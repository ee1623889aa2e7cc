package agentsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/media"
)

// SimAgentOptions configures a SimAgent.
type SimAgentOptions struct {
	// ToneHz is the tone the agent "speaks"; 440 Hz when 0.
	ToneHz float64
	// Amplitude of the tone, 0..1 of full scale; 0.5 when 0.
	Amplitude float64
	// LoopbackOnly restricts ICE to loopback, for tests and load runs on one machine. Ignored
	// with Engine.
	LoopbackOnly bool
	// Engine, if set, is shared (many agents in one load run need not each build a pion API
	// and the caller may put them on a UDP mux); the agent does not close it. When nil the
	// agent makes and closes its own.
	Engine *webrtc.Engine
	// RecordLimit is how many bytes of received audio the agent keeps, the most recent;
	// 30 s (240000) when 0.
	RecordLimit int
	// Source, if set, fills each outgoing 20 ms frame instead of the tone, on the agent's
	// sending goroutine (a load command stamps sequence numbers and send times this way).
	Source func(frame []byte)
	// OnSent, if set, is called on the sending goroutine right after each frame Source filled
	// is written to the network: the moment it reaches the other end's socket on loopback.
	OnSent func()
	// OnFrame, if set, sees each received PCMU payload with its arrival time, on the agent's
	// receiving goroutine; the slice is reused after it returns.
	OnFrame func(ulaw []byte, at time.Time)
	// Watch, if set, is fed every received PCMU payload with its arrival time, to time a
	// tone's gaps (the caller's, while a call moves between instances). It may be shared by
	// the SimAgents a softphone makes one after another.
	Watch *ToneWatch
}

// SimAgent is a pion peer that behaves like an agent's browser: it makes the offer, sends a
// tone in 20 ms PCMU packets paced by a ticker (as a microphone would), sends its keypad as
// RFC 4733 telephone-events on the same SSRC, and records what it hears. Tests, load commands
// and failure drills use it where a headless browser would be too slow or too many.
type SimAgent struct {
	opts      SimAgentOptions
	engine    *webrtc.Engine
	ownEngine bool
	pc        *pion.PeerConnection
	track     *rtpTrack

	muted  atomic.Bool
	sent   atomic.Uint64
	frames atomic.Uint64

	dtmfMu sync.Mutex
	digits []byte // RFC 4733 events waiting to be sent

	recMu sync.Mutex
	rec   []byte

	connected chan struct{} // closed once the connection is up
	ended     chan struct{} // closed once it failed or closed
	stateOnce [2]sync.Once

	mu      sync.Mutex // guards closed, sending, and wg.Add
	closed  bool
	sending bool
	wg      sync.WaitGroup
	stop    chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// NewSimAgent creates the agent's PeerConnection and its outgoing track.
func NewSimAgent(opts SimAgentOptions) (*SimAgent, error) {
	if opts.ToneHz == 0 {
		opts.ToneHz = 440
	}
	if opts.Amplitude == 0 {
		opts.Amplitude = 0.5
	}
	if opts.RecordLimit == 0 {
		opts.RecordLimit = 30 * media.SampleRate
	}
	a := &SimAgent{
		opts:      opts,
		engine:    opts.Engine,
		track:     &rtpTrack{id: "mic", streamID: "simagent"},
		connected: make(chan struct{}),
		ended:     make(chan struct{}),
		stop:      make(chan struct{}),
	}
	if a.engine == nil {
		e, err := webrtc.NewEngine(webrtc.EngineOptions{LoopbackOnly: opts.LoopbackOnly})
		if err != nil {
			return nil, err
		}
		a.engine, a.ownEngine = e, true
	}
	pc, err := a.engine.NewPeerConnection()
	if err != nil {
		_ = a.closeEngine() // undoing a failed start; the error that matters is err
		return nil, fmt.Errorf("agentsim: sim agent: %w", err)
	}
	a.pc = pc
	sender, err := pc.AddTrack(a.track)
	if err != nil {
		_ = pc.Close() // undoing a failed start; the error that matters is err
		_ = a.closeEngine()
		return nil, fmt.Errorf("agentsim: sim agent track: %w", err)
	}
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		switch s {
		case pion.PeerConnectionStateConnected:
			a.stateOnce[0].Do(func() { close(a.connected) })
		case pion.PeerConnectionStateFailed, pion.PeerConnectionStateClosed:
			a.stateOnce[1].Do(func() { close(a.ended) })
		}
	})
	pc.OnTrack(func(track *pion.TrackRemote, _ *pion.RTPReceiver) {
		if !a.enter() {
			return
		}
		defer a.wg.Done()
		a.receive(track)
	})
	a.wg.Add(1)
	go func() { // RTCP is read and dropped, as webrtc.Peer does; ends with the connection
		defer a.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return a, nil
}

func (a *SimAgent) enter() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Add(1)
	return true
}

// Offer makes the agent's offer, waiting (bounded by ctx) until it carries every candidate,
// as a browser that does not trickle would send it.
func (a *SimAgent) Offer(ctx context.Context) (string, error) {
	offer, err := a.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("agentsim: sim agent offer: %w", err)
	}
	gathered := pion.GatheringCompletePromise(a.pc)
	if err := a.pc.SetLocalDescription(offer); err != nil {
		return "", fmt.Errorf("agentsim: sim agent offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("agentsim: sim agent gathering: %w", ctx.Err())
	}
	return a.pc.LocalDescription().SDP, nil
}

// Accept applies the answer and starts speaking: one frame every 20 ms until Close. Frames
// before the connection is up are dropped, as a browser's would be.
func (a *SimAgent) Accept(answerSDP string) error {
	if err := a.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: answerSDP}); err != nil {
		return fmt.Errorf("agentsim: sim agent answer: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.sending {
		return nil
	}
	a.sending = true
	a.wg.Add(1)
	go a.speak()
	return nil
}

// WaitConnected waits until the connection is up, it failed, or ctx ends.
func (a *SimAgent) WaitConnected(ctx context.Context) error {
	select {
	case <-a.connected:
		return nil
	case <-a.ended:
		return errors.New("agentsim: sim agent connection failed or closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Mute makes the agent send silence, as a browser does for a disabled track.
func (a *SimAgent) Mute(muted bool) { a.muted.Store(muted) }

// SendDTMF queues one key press, sent as RFC 4733 events (100 ms, then three end packets) in
// place of audio, the way Chrome's RTCDTMFSender does. It fails for a digit outside 0-9, *,
// #, A-D, or when the connection is up and the peer did not negotiate telephone-event.
func (a *SimAgent) SendDTMF(digit string) error {
	if len(digit) != 1 {
		return media.ErrBadDigit
	}
	code, ok := media.DigitEvent(digit[0])
	if !ok {
		return media.ErrBadDigit
	}
	if a.State() == webrtc.PeerStateConnected && !a.track.canSendEvents() {
		return errors.New("agentsim: peer did not negotiate telephone-event")
	}
	a.dtmfMu.Lock()
	a.digits = append(a.digits, code)
	a.dtmfMu.Unlock()
	return nil
}

func (a *SimAgent) nextDigit() (uint8, bool) {
	a.dtmfMu.Lock()
	defer a.dtmfMu.Unlock()
	if len(a.digits) == 0 {
		return 0, false
	}
	d := a.digits[0]
	a.digits = a.digits[1:]
	return d, true
}

// State returns the agent connection's state.
func (a *SimAgent) State() webrtc.PeerState { return webrtc.PeerStateFromPion(a.pc.ConnectionState()) }

// dtmfEventTicks is how many 20 ms ticks an RFC 4733 event lasts before its end packets.
const dtmfEventTicks = 5

// speak sends one packet every 20 ms: audio, or while a key press is being sent, its
// telephone-event packets (same SSRC and sequence space, the event's own timestamp).
func (a *SimAgent) speak() {
	defer a.wg.Done()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	tone := media.Tone{Freq: a.opts.ToneHz, Amplitude: a.opts.Amplitude}
	frame := make([]byte, media.FrameSamples)
	event := make([]byte, 0, media.TelephoneEventLen)
	h := rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
	var (
		inEvent   bool
		eventCode uint8
		eventTS   uint32
		eventTick int
	)
	for {
		select {
		case <-a.stop:
			return
		case <-ticker.C:
		}
		if !inEvent {
			if code, ok := a.nextDigit(); ok {
				inEvent, eventCode, eventTS, eventTick = true, code, h.Timestamp, 0
			}
		}
		if inEvent {
			eventTick++
			ev := media.TelephoneEvent{Event: eventCode, Volume: 10, Duration: uint16(eventTick * media.FrameSamples)}
			h.Marker = eventTick == 1
			ts := h.Timestamp
			h.Timestamp = eventTS
			repeats := 1
			if eventTick == dtmfEventTicks {
				ev.End, repeats = true, 3 // RFC 4733 §2.5.1.4: the end packet three times
				inEvent = false
			}
			for range repeats {
				event = ev.AppendTo(event[:0])
				_, _ = a.track.write(&h, event, true) // a lost event packet is a lost packet; the end repeats
				h.SequenceNumber++
			}
			h.Timestamp = ts + media.FrameSamples
			h.Marker = false
			continue
		}
		switch {
		case a.muted.Load():
			media.FillSilence(frame)
		case a.opts.Source != nil:
			a.opts.Source(frame)
		default:
			_, _ = tone.Read(frame) // never fails
		}
		if ok, _ := a.track.write(&h, frame, false); ok {
			a.sent.Add(1)
			if a.opts.OnSent != nil {
				a.opts.OnSent()
			}
		}
		h.SequenceNumber++
		h.Timestamp += media.FrameSamples
	}
}

// receive records the PCMU the agent hears.
func (a *SimAgent) receive(track *pion.TrackRemote) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			if n == 0 {
				return
			}
			continue
		}
		at := time.Now()
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != webrtc.PCMUPayloadType || len(pkt.Payload) == 0 {
			continue
		}
		a.frames.Add(1)
		a.recMu.Lock()
		if len(a.rec)+len(pkt.Payload) > 2*a.opts.RecordLimit {
			// Keep the most recent RecordLimit bytes; shifting only when twice that has
			// piled up keeps the cost per frame constant.
			a.rec = append(a.rec[:0], a.rec[len(a.rec)-a.opts.RecordLimit:]...)
		}
		a.rec = append(a.rec, pkt.Payload...)
		a.recMu.Unlock()
		if a.opts.Watch != nil {
			a.opts.Watch.frame(at, pkt.Payload)
		}
		if a.opts.OnFrame != nil {
			a.opts.OnFrame(pkt.Payload, at)
		}
	}
}

// FramesReceived counts the PCMU packets received.
func (a *SimAgent) FramesReceived() int { return int(a.frames.Load()) }

// FramesSent counts the audio packets sent (not telephone-events, not those dropped before
// the connection was up).
func (a *SimAgent) FramesSent() int { return int(a.sent.Load()) }

// Recording returns a copy of the audio received and kept (see RecordLimit).
func (a *SimAgent) Recording() []byte {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	return append([]byte(nil), a.rec...)
}

// ResetRecording forgets what was recorded, so the next checks see only what follows.
func (a *SimAgent) ResetRecording() {
	a.recMu.Lock()
	a.rec = a.rec[:0]
	a.recMu.Unlock()
}

// DominantPower is the Goertzel power at hz of the middle of the recording: a whole number of
// 200 ms windows covering about half of it (at least one window), away from the start-up and
// the last frames. See media.Goertzel for the scale (about amplitude² for a pure tone).
func (a *SimAgent) DominantPower(hz float64) float64 {
	return media.MiddlePower(a.Recording(), hz)
}

// Close closes the connection and waits for the agent's goroutines; idempotent.
func (a *SimAgent) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.stop)
		a.closeErr = a.pc.GracefulClose()
		a.wg.Wait()
		if err := a.closeEngine(); err != nil && a.closeErr == nil {
			a.closeErr = err
		}
	})
	return a.closeErr
}

func (a *SimAgent) closeEngine() error {
	if a.ownEngine {
		return a.engine.Close()
	}
	return nil
}
