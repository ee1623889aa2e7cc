package webrtc

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/webrtc/media"
)

// CarrierLeg is the carrier side of a call's media: the carrier's media stream, which takes
// mu-law frames towards the caller. webhooks.MediaStream satisfies it.
type CarrierLeg interface {
	SendAudio(ulaw []byte) error
}

// EventKind says what happened on a bridge. The zero value means unknown.
type EventKind int8

// Bridge event kinds.
const (
	EventUnknown     EventKind = iota
	EventCarrierDTMF           // the caller pressed a key (the carrier reported a digit)
	EventAgentDTMF             // the agent pressed a key (RFC 4733 from the browser)
	EventEnded                 // the bridge ended; sent once
)

func (k EventKind) String() string {
	switch k {
	case EventCarrierDTMF:
		return "carrier-dtmf"
	case EventAgentDTMF:
		return "agent-dtmf"
	case EventEnded:
		return "ended"
	default:
		return "unknown"
	}
}

// ParseEventKind is the inverse of String; anything else is EventUnknown.
func ParseEventKind(s string) EventKind {
	for k := EventCarrierDTMF; k <= EventEnded; k++ {
		if k.String() == s {
			return k
		}
	}
	return EventUnknown
}

// Event is something a bridge reports to its owner.
type Event struct {
	CallID string
	Kind   EventKind
	// Digit is the key pressed, for the DTMF kinds.
	Digit string
	// CarrierStopped, for EventEnded, says the carrier's stream ended (Stopped) rather than
	// our side calling End.
	CarrierStopped bool
}

// BridgeOptions configures a Bridge.
type BridgeOptions struct {
	// OnEvent receives digits from both sides and, once, EventEnded. It runs on the goroutine
	// that caused the event (the carrier's read loop, the agent peer's read goroutine, or the
	// caller of End) and must not block; it may call End, but not Peer.Close.
	OnEvent func(Event)
}

// BridgeStats counts a bridge's frames and the time each spent inside it.
type BridgeStats struct {
	CarrierToAgent uint64 // frames written to the agent's connection
	AgentToCarrier uint64 // frames the carrier accepted: agent audio, or silence, hold tone and DTMF the bridge made
	// Frames that could not be forwarded: towards the agent while its connection is not up,
	// towards the carrier when SendAudio failed.
	DroppedToAgent   uint64
	DroppedToCarrier uint64
	// From the call of Audio to the return of pion's WriteSample (which packetises, encrypts
	// and writes to the socket in the caller's goroutine).
	CarrierToAgentLatency LatencySnapshot
	// From the Peer's read of the agent's RTP packet to the return of the leg's SendAudio.
	AgentToCarrierLatency LatencySnapshot
}

// agentStale is how long the agent may send nothing before the bridge's own clock takes over
// the pace of what it must send the carrier (silence when muted, the hold tone, DTMF): two
// and a half frames, so one late packet does not trigger it.
const agentStale = 50 * time.Millisecond

// Bridge joins one carrier media stream and one agent Peer for one call. The carrier's frames
// go to the agent as they arrive (Audio, on the carrier's read goroutine); the agent's go to
// the carrier as they arrive (on the Peer's read goroutine). Neither direction is queued or
// re-timed, so the bridge adds no delay beyond the work of forwarding.
//
// Bridge implements the carrier side's media receiver (Audio, DTMF, Stopped).
type Bridge struct {
	callID  string
	leg     CarrierLeg
	peer    *Peer
	onEvent func(Event)
	epoch   time.Time // monotonic base for lastAgent

	audioSink *func(ulaw []byte)
	dtmfSink  *func(digit string)

	muted     atomic.Bool
	held      atomic.Bool
	holdReset atomic.Bool  // restart the hold pattern with a beep at the next frame
	lastAgent atomic.Int64 // when the last agent packet arrived, in ns since epoch
	ended     atomic.Bool

	inMu    sync.Mutex // serialises Audio, and End with it
	silence []byte     // sent to the agent while held; only grows

	outMu   sync.Mutex // serialises frames to the carrier, and End with them; guards below
	chunk   []byte     // agent audio short of a whole frame
	scratch [media.FrameSamples]byte
	hold    media.HoldTone

	toneMu sync.Mutex // guards dtmf; taken under outMu, or alone by SendDTMF
	dtmf   media.DTMFTones

	wake    chan struct{} // the pacer may be needed (mute, hold or a digit)
	stop    chan struct{}
	wg      sync.WaitGroup
	endOnce sync.Once

	c2a, a2c, dropA, dropC atomic.Uint64
	c2aLat, a2cLat         LatencyHistogram
}

// NewBridge attaches a call to an agent's Peer, replacing whatever was attached to it. The
// bridge owns one goroutine, a pacer that produces frames for the carrier only while the agent
// is silent and the carrier must still hear something; End or Stopped stops it.
func NewBridge(callID string, leg CarrierLeg, peer *Peer, opts BridgeOptions) *Bridge {
	b := &Bridge{
		callID:  callID,
		leg:     leg,
		peer:    peer,
		onEvent: opts.OnEvent,
		epoch:   time.Now(),
		chunk:   make([]byte, 0, media.FrameSamples),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	audio := b.fromAgent
	dtmf := b.agentDigit
	b.audioSink, b.dtmfSink = &audio, &dtmf
	b.wg.Add(1)
	go b.pace()
	peer.attachSinks(b.audioSink, b.dtmfSink)
	peer.engine.bridgeChanged(+1)
	return b
}

// CallID returns the call this bridge serves.
func (b *Bridge) CallID() string { return b.callID }

// Audio forwards one carrier frame to the agent. It writes straight to the Peer: pion's
// WriteSample copies, encrypts and sends in a few microseconds and does not wait for the
// network (a UDP send only blocks on a full socket buffer), so the carrier's read loop is
// never held up by a slow agent; a queue would only add a goroutine hop and delay. While the
// call is on hold the agent hears silence instead.
func (b *Bridge) Audio(ulaw []byte) {
	start := time.Now()
	b.inMu.Lock()
	defer b.inMu.Unlock()
	if b.ended.Load() || len(ulaw) == 0 {
		return
	}
	frame := ulaw
	if b.held.Load() {
		if len(b.silence) < len(ulaw) {
			b.silence = make([]byte, len(ulaw))
			media.FillSilence(b.silence)
		}
		frame = b.silence[:len(ulaw)]
	}
	if err := b.peer.WriteAudio(frame); err != nil {
		b.dropA.Add(1)
		return
	}
	b.c2a.Add(1)
	b.c2aLat.Observe(time.Since(start))
}

// DTMF reports a digit the caller pressed, as the carrier detected it.
func (b *Bridge) DTMF(digit string) {
	if b.ended.Load() {
		return
	}
	b.emit(Event{Kind: EventCarrierDTMF, Digit: digit})
}

// Stopped ends the bridge because the carrier's stream ended.
func (b *Bridge) Stopped() { b.end(true) }

// End stops forwarding in both directions, detaches the bridge from the Peer and waits for its
// goroutine and for any frame being forwarded. It does not close the Peer: the agent's
// connection outlives calls. End is idempotent; only the first call (or Stopped) reports
// EventEnded.
func (b *Bridge) End() { b.end(false) }

func (b *Bridge) end(carrierStopped bool) {
	first := false
	b.endOnce.Do(func() {
		first = true
		b.peer.detachSinks(b.audioSink, b.dtmfSink)
		// Taking both locks waits out a frame already being forwarded in either direction;
		// every later one sees ended.
		b.inMu.Lock()
		b.outMu.Lock()
		b.ended.Store(true)
		b.outMu.Unlock()
		b.inMu.Unlock()
		close(b.stop)
		b.wg.Wait()
		b.peer.engine.bridgeChanged(-1)
	})
	if first {
		b.emit(Event{Kind: EventEnded, CarrierStopped: carrierStopped})
	}
}

func (b *Bridge) emit(e Event) {
	if b.onEvent != nil {
		e.CallID = b.callID
		b.onEvent(e)
	}
}

// SetMuted replaces the agent's audio with silence at the same pace, so the carrier's stream
// stays steady. A frame already being sent when SetMuted is called still carries audio.
func (b *Bridge) SetMuted(muted bool) {
	b.muted.Store(muted)
	if muted {
		b.poke()
	}
}

// SetHeld puts the call on hold: the caller hears a soft hold tone instead of the agent, and
// the agent hears silence instead of the caller.
func (b *Bridge) SetHeld(held bool) {
	if b.held.Swap(held) != held && held {
		b.holdReset.Store(true)
		b.poke()
	}
}

// SendDTMF plays digits (0-9, *, #, A-D) to the carrier as in-band DTMF, 100 ms of tone and
// 60 ms of silence each, in place of the agent's audio. Media streams towards the carrier
// carry audio only, so a keypad press has to be heard, not signalled.
func (b *Bridge) SendDTMF(digits string) error {
	b.toneMu.Lock()
	err := b.dtmf.Add(digits)
	b.toneMu.Unlock()
	if err == nil {
		b.poke()
	}
	return err
}

// agentDigit is the Peer's DTMF sink: the agent's RFC 4733 key press becomes an in-band tone
// towards the carrier, and an event.
func (b *Bridge) agentDigit(digit string) {
	if b.ended.Load() {
		return
	}
	_ = b.SendDTMF(digit) // the Peer only reports valid digits, and one key press cannot overflow
	b.emit(Event{Kind: EventAgentDTMF, Digit: digit})
}

func (b *Bridge) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// fromAgent is the Peer's audio sink. Browsers send 20 ms packets, but any size is cut into
// the 160-byte frames carriers expect.
func (b *Bridge) fromAgent(ulaw []byte) {
	start := time.Now()
	b.lastAgent.Store(int64(start.Sub(b.epoch)))
	b.outMu.Lock()
	defer b.outMu.Unlock()
	if b.ended.Load() {
		return
	}
	for len(ulaw) > 0 {
		var frame []byte
		if len(b.chunk) == 0 && len(ulaw) >= media.FrameSamples {
			frame, ulaw = ulaw[:media.FrameSamples], ulaw[media.FrameSamples:]
		} else {
			n := min(media.FrameSamples-len(b.chunk), len(ulaw))
			b.chunk = append(b.chunk, ulaw[:n]...)
			ulaw = ulaw[n:]
			if len(b.chunk) < media.FrameSamples {
				return
			}
			frame = b.chunk
		}
		b.sendLocked(b.outboundLocked(frame), start)
		b.chunk = b.chunk[:0]
	}
}

// outboundLocked chooses what the carrier hears in place of one agent frame (nil when the
// pacer asks for a frame of its own): a DTMF digit being played, then the hold tone, then
// silence when muted, else the agent. The result is only valid until the next call.
func (b *Bridge) outboundLocked(agent []byte) []byte {
	b.toneMu.Lock()
	playing := b.dtmf.Next(b.scratch[:])
	b.toneMu.Unlock()
	switch {
	case playing:
		return b.scratch[:]
	case b.held.Load():
		if b.holdReset.Swap(false) {
			b.hold.Reset()
		}
		b.hold.Next(b.scratch[:])
		return b.scratch[:]
	case b.muted.Load():
		media.FillSilence(b.scratch[:])
		return b.scratch[:]
	default:
		return agent
	}
}

// sendLocked sends one frame to the carrier; a zero start means the bridge made the frame and
// there is no agent packet to time it from.
func (b *Bridge) sendLocked(frame []byte, start time.Time) {
	if frame == nil {
		return
	}
	if err := b.leg.SendAudio(frame); err != nil {
		b.dropC.Add(1)
		return
	}
	b.a2c.Add(1)
	if !start.IsZero() {
		b.a2cLat.Observe(time.Since(start))
	}
}

// needsPacer reports whether the carrier must hear something even if the agent is silent.
func (b *Bridge) needsPacer() bool {
	if b.held.Load() || b.muted.Load() {
		return true
	}
	b.toneMu.Lock()
	defer b.toneMu.Unlock()
	return b.dtmf.Pending()
}

// pace keeps frames flowing to the carrier while the call is muted, held or playing DTMF and
// the agent's own packets, which normally set the pace, have stopped (a browser may stop
// sending while it plays RFC 4733 digits, or on a network hiccup). It runs a ticker only while
// one of those states lasts, so a normal call costs it nothing.
func (b *Bridge) pace() {
	defer b.wg.Done()
	var (
		ticker *time.Ticker
		tick   <-chan time.Time
	)
	stopTicker := func() {
		if ticker != nil {
			ticker.Stop()
			ticker, tick = nil, nil
		}
	}
	defer stopTicker()
	for {
		select {
		case <-b.stop:
			return
		case <-b.wake:
			if ticker == nil && b.needsPacer() {
				ticker = time.NewTicker(20 * time.Millisecond)
				tick = ticker.C
			}
		case now := <-tick:
			if !b.needsPacer() {
				stopTicker()
				continue
			}
			if now.Sub(b.epoch)-time.Duration(b.lastAgent.Load()) < agentStale {
				continue // the agent's packets set the pace
			}
			b.outMu.Lock()
			if !b.ended.Load() {
				b.sendLocked(b.outboundLocked(nil), time.Time{})
			}
			b.outMu.Unlock()
		}
	}
}

// Muted reports whether the agent is muted towards the carrier.
func (b *Bridge) Muted() bool { return b.muted.Load() }

// Held reports whether the call is on hold.
func (b *Bridge) Held() bool { return b.held.Load() }

// Stats returns the bridge's counters so far.
func (b *Bridge) Stats() BridgeStats {
	return BridgeStats{
		CarrierToAgent:        b.c2a.Load(),
		AgentToCarrier:        b.a2c.Load(),
		DroppedToAgent:        b.dropA.Load(),
		DroppedToCarrier:      b.dropC.Load(),
		CarrierToAgentLatency: b.c2aLat.Snapshot(),
		AgentToCarrierLatency: b.a2cLat.Snapshot(),
	}
}
