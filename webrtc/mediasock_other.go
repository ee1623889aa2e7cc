//go:build !linux

package webrtc

import (
	"net"
	"net/netip"
)

// listenMediaSocket is an ordinary polled UDP socket where the blocking reader of
// mediasock_linux.go is not available.
func listenMediaSocket(ip netip.Addr, port, buffer int) (net.PacketConn, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return nil, err
	}
	c.SetReadBuffer(buffer)
	c.SetWriteBuffer(buffer)
	return c, nil
}
