package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/switchboard/switchboard/webrtc/media"
)

// ErrPeerNotConnected is returned by WriteAudio before the agent's connection is up (pion
// would silently drop the frame) and after it went down.
var ErrPeerNotConnected = errors.New("webrtc: agent peer not connected")

// ErrPeerClosed is returned by Peer methods after Close.
var ErrPeerClosed = errors.New("webrtc: agent peer closed")

// Peer is one agent's PeerConnection. It lives as long as the agent's session, across calls:
// a Bridge attaches to it for one call and detaches at the end.
//
// Audio to the agent goes through WriteAudio; audio and keypad digits from the agent go to the
// sinks set with SetAgentAudioSink and SetDTMFSink.
type Peer struct {
	engine *Engine
	pc     *pion.PeerConnection
	track  *pion.TrackLocalStaticSample

	onState   func(PeerState)
	stateMu   sync.Mutex // orders state deliveries; guards lastState
	lastState PeerState

	// Sinks are swapped atomically so the read goroutine never takes a lock per packet. A
	// Bridge detaches only its own sink (compare-and-swap on the pointer), so a bridge that
	// ends late cannot detach the next call's.
	audioSink atomic.Pointer[func(ulaw []byte)]
	dtmfSink  atomic.Pointer[func(digit string)]
	candSink  atomic.Pointer[func(candidateJSON string)]

	mu        sync.Mutex // guards everything below
	remoteSet bool
	pending   []pion.ICECandidateInit // trickled before the offer arrived
	closed    bool
	wg        sync.WaitGroup // goroutines reading RTCP and the agent's track, and callbacks

	closeOnce sync.Once
	closeErr  error
}

// NewPeer creates an agent's PeerConnection with its outgoing PCMU track. onState, if not
// nil, is called on every connection state change, in order, from a goroutine of pion's; it
// sees only current states (a state that was already replaced is skipped) and is always
// called last with PeerStateClosed. It must not call Close.
func (e *Engine) NewPeer(onState func(PeerState)) (*Peer, error) {
	pc, err := e.api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	p := &Peer{engine: e, pc: pc, onState: onState, lastState: PeerStateNew}

	// The track must exist before negotiation so the answer offers the agent audio.
	p.track, err = pion.NewTrackLocalStaticSample(pcmuCodec(), "audio", "switchboard")
	if err != nil {
		_ = pc.Close() // never connected; the error that matters is err
		return nil, fmt.Errorf("webrtc: local track: %w", err)
	}
	sender, err := pc.AddTrack(p.track)
	if err != nil {
		_ = pc.Close() // never connected; the error that matters is err
		return nil, fmt.Errorf("webrtc: add track: %w", err)
	}

	pc.OnConnectionStateChange(func(pion.PeerConnectionState) {
		if !p.enter() {
			return
		}
		defer p.wg.Done()
		p.deliverState()
	})
	pc.OnTrack(func(track *pion.TrackRemote, receiver *pion.RTPReceiver) {
		// pion runs this callback in its own goroutine; enter/Done make it ours, so Close
		// waits for the read loop.
		if !p.enter() {
			return
		}
		defer p.wg.Done()
		p.readAgent(track, receiver)
	})
	pc.OnICECandidate(func(c *pion.ICECandidate) {
		f := p.candSink.Load()
		if f == nil {
			return
		}
		if c == nil {
			(*f)("")
			return
		}
		b, err := json.Marshal(c.ToJSON())
		if err != nil {
			return
		}
		(*f)(string(b))
	})

	// RTCP from the agent is read and dropped: unread, it would pile up in pion's buffer, and
	// with RTCPReports the interceptor sees it only through this read. pion blocks this Read
	// until the sender starts and ends it on Close.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return p, nil
}

// enter registers a callback goroutine with the Peer; false means the Peer is closing and the
// callback must return at once.
func (p *Peer) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// deliverState reports the connection's current state if it changed. pion calls its state
// handler in a new goroutine per change, so two changes can race; reading the current state
// under a lock, instead of trusting the value each goroutine was started with, keeps the
// sequence the callback sees in order.
func (p *Peer) deliverState() {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	s := PeerStateFromPion(p.pc.ConnectionState())
	if s == p.lastState || p.lastState == PeerStateClosed {
		return
	}
	p.lastState = s
	if p.onState != nil {
		p.onState(s)
	}
}

// State returns the connection's current state.
func (p *Peer) State() PeerState { return PeerStateFromPion(p.pc.ConnectionState()) }

// SetAgentAudioSink sets where the agent's audio goes: each PCMU payload (usually 20 ms,
// 160 bytes), called from the Peer's read goroutine. The slice is reused after the call
// returns. nil drops the audio.
func (p *Peer) SetAgentAudioSink(sink func(ulaw []byte)) {
	if sink == nil {
		p.audioSink.Store(nil)
		return
	}
	p.audioSink.Store(&sink)
}

// SetDTMFSink sets where the agent's keypad digits ("0"-"9", "*", "#", "A"-"D") go, once per
// key press, called from the Peer's read goroutine. nil drops them.
func (p *Peer) SetDTMFSink(sink func(digit string)) {
	if sink == nil {
		p.dtmfSink.Store(nil)
		return
	}
	p.dtmfSink.Store(&sink)
}

// OnLocalCandidate switches Answer to trickle ICE: Answer returns without waiting for
// candidates, and f receives each local candidate as RTCIceCandidateInit JSON (what the
// browser's addIceCandidate takes), then "" when gathering is complete. Set it before Answer.
// f runs on pion's ICE goroutine and must not block.
func (p *Peer) OnLocalCandidate(f func(candidateJSON string)) {
	if f == nil {
		p.candSink.Store(nil)
		return
	}
	p.candSink.Store(&f)
}

// Answer applies the agent's offer and returns our answer. Without OnLocalCandidate it waits
// for ICE gathering to finish, bounded by ctx, so the answer carries every candidate; on host
// or loopback addresses that takes milliseconds.
func (p *Peer) Answer(ctx context.Context, offerSDP string) (string, error) {
	if p.isClosed() {
		return "", ErrPeerClosed
	}
	if err := p.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("webrtc: agent offer: %w", err)
	}
	if err := p.flushCandidates(); err != nil {
		return "", err
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("webrtc: create answer: %w", err)
	}
	trickle := p.candSink.Load() != nil
	var gathered <-chan struct{}
	if !trickle {
		gathered = pion.GatheringCompletePromise(p.pc)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("webrtc: set answer: %w", err)
	}
	if !trickle {
		select {
		case <-gathered:
		case <-ctx.Done():
			return "", fmt.Errorf("webrtc: gathering candidates: %w", ctx.Err())
		}
	}
	return p.pc.LocalDescription().SDP, nil
}

// AddICECandidate adds a candidate trickled by the agent (RTCIceCandidateInit JSON; an empty
// candidate means end of candidates). Candidates that arrive before the offer are kept
// until Answer applies it, because pion refuses them without a remote description.
func (p *Peer) AddICECandidate(candidateJSON string) error {
	var c pion.ICECandidateInit
	if err := json.Unmarshal([]byte(candidateJSON), &c); err != nil {
		return fmt.Errorf("webrtc: candidate: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrPeerClosed
	}
	if !p.remoteSet {
		if len(p.pending) >= maxPendingCandidates {
			return errors.New("webrtc: too many candidates before the offer")
		}
		p.pending = append(p.pending, c)
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("webrtc: add candidate: %w", err)
	}
	return nil
}

// maxPendingCandidates bounds what an agent can make us hold before its offer; a browser
// gathers a handful per interface.
const maxPendingCandidates = 64

func (p *Peer) flushCandidates() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remoteSet = true
	pending := p.pending
	p.pending = nil
	for _, c := range pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			return fmt.Errorf("webrtc: add early candidate: %w", err)
		}
	}
	return nil
}

// WriteAudio sends one frame of mu-law to the agent, timed as len(ulaw)/8 ms (20 ms for the
// usual 160 bytes). It returns as soon as the packet is handed to the socket: pion packetises,
// encrypts and writes in the caller's goroutine, and copies the payload, so ulaw may be
// reused at once.
func (p *Peer) WriteAudio(ulaw []byte) error {
	if p.pc.ConnectionState() != pion.PeerConnectionStateConnected {
		return ErrPeerNotConnected
	}
	return p.track.WriteSample(pionmedia.Sample{
		Data:     ulaw,
		Duration: time.Duration(len(ulaw)) * time.Second / 8000,
	})
}

// readAgent reads the agent's track until the connection closes. PCMU payloads go to the
// audio sink; telephone-event packets, which arrive on the same track with their own payload
// type, become digits.
func (p *Peer) readAgent(track *pion.TrackRemote, receiver *pion.RTPReceiver) {
	events := map[uint8]bool{}
	for _, c := range receiver.GetParameters().Codecs {
		if strings.EqualFold(c.MimeType, MimeTypeTelephoneEvent) {
			events[uint8(c.PayloadType)] = true
		}
	}
	var (
		buf  = make([]byte, 1500)
		pkt  rtp.Packet
		dtmf media.DTMFDetector
	)
	emit := func(digit string) {
		if f := p.dtmfSink.Load(); f != nil {
			(*f)(digit)
		}
	}
	for {
		// Read into our own buffer, not ReadRTP, which allocates a buffer and a packet for
		// every 20 ms of every agent.
		n, _, err := track.Read(buf)
		if err != nil {
			if n == 0 {
				return // closed
			}
			continue // a packet with a payload type we did not negotiate
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		switch {
		case pkt.PayloadType == PCMUPayloadType:
			if f := p.audioSink.Load(); f != nil && len(pkt.Payload) > 0 {
				(*f)(pkt.Payload)
			}
		case events[pkt.PayloadType]:
			dtmf.Packet(pkt.Timestamp, pkt.Payload, emit)
		}
	}
}

func (p *Peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close closes the PeerConnection and waits for every goroutine the Peer started or took over
// from pion. It is idempotent. It must not be called from a sink or the onState callback,
// which run on goroutines it waits for.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		// GracefulClose also waits for pion's own goroutines, so nothing of this peer
		// outlives Close.
		p.closeErr = p.pc.GracefulClose()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.wg.Wait()
		p.stateMu.Lock()
		last := p.lastState
		p.lastState = PeerStateClosed
		p.stateMu.Unlock()
		if last != PeerStateClosed && p.onState != nil {
			p.onState(PeerStateClosed)
		}
	})
	return p.closeErr
}

// attachSinks installs a bridge's sinks, replacing whatever was attached.
func (p *Peer) attachSinks(audio *func(ulaw []byte), dtmf *func(digit string)) {
	p.audioSink.Store(audio)
	p.dtmfSink.Store(dtmf)
}

// detachSinks removes a bridge's sinks only if they are still the attached ones: a later
// bridge on the same agent may already have replaced them.
func (p *Peer) detachSinks(audio *func(ulaw []byte), dtmf *func(digit string)) {
	p.audioSink.CompareAndSwap(audio, nil)
	p.dtmfSink.CompareAndSwap(dtmf, nil)
}
