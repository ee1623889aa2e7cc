package webrtc

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestMediaSocketMovesPacketsBothWays(t *testing.T) {
	pc, err := listenMediaSocket(netip.MustParseAddr("127.0.0.1"), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := pc.(*mediaSocket)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.SetDeadline(time.Now().Add(5 * time.Second))

	if _, err := peer.WriteTo([]byte("hello"), s.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := s.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
	if _, err := s.WriteToAddrPort([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo([]byte("again"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"back", "again"} {
		n, addr, err := peer.ReadFrom(buf)
		if err != nil || string(buf[:n]) != want || addr.String() != s.LocalAddr().String() {
			t.Fatalf("peer read %q from %v (%v), want %q from %v", buf[:n], addr, err, want, s.LocalAddr())
		}
	}
	if _, err := s.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[::1]:9")); err == nil {
		t.Fatal("an IPv6 destination was accepted by an IPv4 socket")
	}
}

// Close under concurrent senders and a blocked reader: every call returns, with
// net.ErrClosed once the socket is closed, and nothing writes to a closed descriptor.
func TestMediaSocketCloseUnderLoad(t *testing.T) {
	pc, err := listenMediaSocket(netip.MustParseAddr("127.0.0.1"), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := pc.(*mediaSocket)
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()

	readErr := make(chan error, 1)
	go func() {
		_, _, err := s.ReadFromAddrPort(make([]byte, 1500))
		readErr <- err
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				if _, err := s.WriteToAddrPort(make([]byte, 172), to); err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("send after close: %v, want net.ErrClosed", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader was not woken by Close")
	}
}
