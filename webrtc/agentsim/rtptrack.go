package agentsim

import (
	"strings"
	"sync"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/webrtc"
)

// rtpTrack is a TrackLocal that sends RTP packets its caller builds, keeping the payload type
// the caller chose. pion's TrackLocalStaticRTP overwrites every packet's payload type with the
// one codec it bound, so it cannot carry telephone-event next to PCMU on one SSRC, which is
// what a browser's RTCDTMFSender does; and pion has no DTMF sender of its own.
type rtpTrack struct {
	id, streamID string

	mu        sync.RWMutex
	bindingID string // "" while unbound
	ssrc      uint32
	pcmuPT    uint8
	eventPT   uint8
	hasEvents bool // the peer negotiated telephone-event
	w         pion.TrackLocalWriter
}

func (t *rtpTrack) Bind(ctx pion.TrackLocalContext) (pion.RTPCodecParameters, error) {
	var pcmu *pion.RTPCodecParameters
	var eventPT uint8
	hasEvents := false
	for _, c := range ctx.CodecParameters() {
		switch {
		case strings.EqualFold(c.MimeType, pion.MimeTypePCMU) && pcmu == nil:
			pcmu = &c
		case strings.EqualFold(c.MimeType, webrtc.MimeTypeTelephoneEvent) && c.ClockRate == 8000 && !hasEvents:
			eventPT, hasEvents = uint8(c.PayloadType), true
		}
	}
	if pcmu == nil {
		return pion.RTPCodecParameters{}, pion.ErrUnsupportedCodec
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bindingID = ctx.ID()
	t.ssrc = uint32(ctx.SSRC())
	t.pcmuPT = uint8(pcmu.PayloadType)
	t.eventPT, t.hasEvents = eventPT, hasEvents
	t.w = ctx.WriteStream()
	return *pcmu, nil
}

func (t *rtpTrack) Unbind(ctx pion.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bindingID != ctx.ID() {
		return pion.ErrUnbindFailed
	}
	t.bindingID, t.w = "", nil
	return nil
}

func (t *rtpTrack) ID() string              { return t.id }
func (t *rtpTrack) RID() string             { return "" }
func (t *rtpTrack) StreamID() string        { return t.streamID }
func (t *rtpTrack) Kind() pion.RTPCodecType { return pion.RTPCodecTypeAudio }

// canSendEvents reports whether the track is bound and the peer takes telephone-event.
func (t *rtpTrack) canSendEvents() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.w != nil && t.hasEvents
}

// write sends one packet with the bound SSRC, as PCMU or, with event, as telephone-event.
// Before binding, or for an event the peer did not negotiate, the packet is dropped and write
// reports false.
func (t *rtpTrack) write(h *rtp.Header, payload []byte, event bool) (bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.w == nil || (event && !t.hasEvents) {
		return false, nil
	}
	h.SSRC = t.ssrc
	h.PayloadType = t.pcmuPT
	if event {
		h.PayloadType = t.eventPT
	}
	_, err := t.w.WriteRTP(h, payload)
	return err == nil, err
}
