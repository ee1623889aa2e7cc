package webrtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"
)

// Codec parameters negotiated with agents. Only PCMU is registered so pion can never pick a
// codec we would have to transcode; telephone-event lets the browser send its keypad as
// RFC 4733 events on the same track.
const (
	// PCMUPayloadType is PCMU's static RTP payload type (RFC 3551).
	PCMUPayloadType           = 0
	telephoneEventPayloadType = 101 // our offer's choice; an answer takes the offerer's PT
	// MimeTypeTelephoneEvent is RFC 4733's media type, the codec a keypad's events travel as.
	MimeTypeTelephoneEvent = "audio/telephone-event"
)

// muxBuffer is the receive and send buffer asked for on the shared UDP socket (the kernel caps
// them at net.core.rmem_max and wmem_max). One socket carries every peer's packets, 50 per
// second each way per peer, so the kernel's default of about 200 KB would hold only a few
// milliseconds of them: a scheduling pause would overflow the receive side, and a full send
// side would block every peer's writes at once.
const muxBuffer = 4 << 20

// EngineOptions configures the pion engine shared by every agent PeerConnection of a process.
type EngineOptions struct {
	// LoopbackOnly restricts ICE to UDP4 candidates on loopback addresses and turns mDNS off.
	// It is for tests and the one-machine demo: RFC 8445 forbids loopback candidates on a
	// real network.
	LoopbackOnly bool
	// UDPMuxPort, when not 0, makes every peer share one UDP port (ICE demultiplexes by
	// username fragment), so a server with many agents needs one socket and one firewall
	// rule instead of one ephemeral port per agent. 0 gives each peer its own ephemeral port.
	UDPMuxPort int
	// PublicIPs, when set, replace the host candidates' addresses with these, for a server
	// behind a 1:1 NAT (a cloud VM whose public address is not on any interface).
	PublicIPs []string
	// RTCPReports sends RTCP sender and receiver reports, so the agent's browser can show
	// round-trip time and loss in getStats (remote-inbound-rtp). Audio plays without them;
	// bridgeload measured about 15 % more CPU per call with them on loopback.
	RTCPReports bool
	// OnBridges, if set, is told the number of live bridges each time a Bridge on one of the
	// engine's peers starts or ends: one call at a time, in order. It must not block. The
	// commands use it to size GOMAXPROCS (cmd/internal/procs); the engine decides nothing.
	OnBridges func(live int)
}

// Engine holds the pion API every Peer is created from: one codec table, one ICE setting
// and, optionally, one shared UDP socket.
type Engine struct {
	api *pion.API
	mux *ice.MultiUDPMuxDefault // nil without UDPMuxPort

	onBridges func(live int)
	bridgeMu  sync.Mutex // orders onBridges calls; guards bridges
	bridges   int
}

// NewEngine builds the pion API for opts. Close it after every Peer created from it.
func NewEngine(opts EngineOptions) (*Engine, error) {
	media, err := newMediaEngine()
	if err != nil {
		return nil, err
	}

	// No interceptor by default. NACK, TWCC and the stats interceptor that pion registers
	// when given none buy nothing for 50 packets per second of G.711; RTCP reports only feed
	// the browser's getStats, and cost two goroutines per connection and an allocation and a
	// lock per packet received.
	reg := &interceptor.Registry{}
	if opts.RTCPReports {
		if err := pion.ConfigureRTCPReports(reg); err != nil {
			return nil, fmt.Errorf("webrtc: RTCP reports: %w", err)
		}
	}

	var se pion.SettingEngine
	// mDNS is off in every mode: a server reachable by the browser learns the browser's
	// address from its connectivity checks (peer-reflexive candidates), and QueryOnly mode
	// would open multicast sockets for every peer.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	if opts.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if len(opts.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{
			External:        opts.PublicIPs,
			AsCandidateType: pion.ICECandidateTypeHost,
			Mode:            pion.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("webrtc: public IPs: %w", err)
		}
	}

	e := &Engine{onBridges: opts.OnBridges}
	if opts.UDPMuxPort != 0 {
		if e.mux, err = newMediaMux(opts.UDPMuxPort, opts.LoopbackOnly); err != nil {
			return nil, err
		}
		se.SetICEUDPMux(e.mux)
	}

	e.api = pion.NewAPI(
		pion.WithMediaEngine(media),
		pion.WithSettingEngine(se),
		pion.WithInterceptorRegistry(reg),
	)
	return e, nil
}

// newMediaEngine registers PCMU and telephone-event, and nothing else.
func newMediaEngine() (*pion.MediaEngine, error) {
	m := &pion.MediaEngine{}
	if err := m.RegisterCodec(pion.RTPCodecParameters{
		RTPCodecCapability: pcmuCodec(),
		PayloadType:        PCMUPayloadType,
	}, pion.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtc: register PCMU: %w", err)
	}
	if err := m.RegisterCodec(pion.RTPCodecParameters{
		RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: MimeTypeTelephoneEvent, ClockRate: 8000, Channels: 1, SDPFmtpLine: "0-16",
		},
		PayloadType: telephoneEventPayloadType,
	}, pion.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtc: register telephone-event: %w", err)
	}
	return m, nil
}

func pcmuCodec() pion.RTPCodecCapability {
	return pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000, Channels: 1}
}

// NewPeerConnection makes a bare pion PeerConnection on the engine's codec table and ICE
// settings, for the offering side that agentsim plays in place of a browser; the server's
// side of an agent's call is a Peer (NewPeer).
func (e *Engine) NewPeerConnection() (*pion.PeerConnection, error) {
	return e.api.NewPeerConnection(pion.Configuration{})
}

// bridgeChanged counts a bridge started (+1) or ended (-1) and tells OnBridges.
func (e *Engine) bridgeChanged(delta int) {
	if e.onBridges == nil {
		return
	}
	e.bridgeMu.Lock()
	defer e.bridgeMu.Unlock()
	e.bridges += delta
	e.onBridges(e.bridges)
}

// UDPMuxAddrs returns the addresses of the shared UDP socket, or nil without a mux; for logs
// and firewall checks.
func (e *Engine) UDPMuxAddrs() []net.Addr {
	if e.mux == nil {
		return nil
	}
	return e.mux.GetListenAddresses()
}

// Close releases the shared UDP socket. Close every Peer first: their ICE traffic runs on it.
func (e *Engine) Close() error {
	if e.mux == nil {
		return nil
	}
	err := e.mux.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// newMediaMux opens the shared media port on every usable IPv4 address (on loopback only,
// or on every other interface), one mediaSocket each, as pion's NewMultiUDPMuxFromPort would
// with ordinary sockets.
func newMediaMux(port int, loopbackOnly bool) (*ice.MultiUDPMuxDefault, error) {
	ips, err := mediaIPs(loopbackOnly)
	if err != nil {
		return nil, fmt.Errorf("webrtc: UDP mux on port %d: %w", port, err)
	}
	var muxes []ice.UDPMux
	closeAll := func() {
		for _, m := range muxes {
			_ = m.Close() // undoing a failed start; the error that matters is the start's
		}
	}
	for _, ip := range ips {
		conn, err := listenMediaSocket(ip, port, muxBuffer)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("webrtc: UDP mux on %s: %w", netip.AddrPortFrom(ip, uint16(port)), err)
		}
		muxes = append(muxes, ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn}))
	}
	return ice.NewMultiUDPMuxDefault(muxes...), nil
}

// mediaIPs are the IPv4 addresses of the interfaces that are up: loopback ones only when
// loopbackOnly, else every other one but link-local.
func mediaIPs(loopbackOnly bool) ([]netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || (iface.Flags&net.FlagLoopback != 0) != loopbackOnly {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipNet, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipNet.IP)
			if ip = ip.Unmap(); ok && ip.Is4() && !ip.IsLinkLocalUnicast() {
				ips = append(ips, ip)
			}
		}
	}
	if len(ips) == 0 {
		return nil, errors.New("no usable IPv4 address")
	}
	return ips, nil
}
