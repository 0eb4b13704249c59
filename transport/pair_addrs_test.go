package transport

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/fungi-go/fungi/transport/pair"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// A real host that listens on 127.0.0.1 and has LAN and public addresses
// too (announced, as a port mapping or a relay adds them) prints codes
// without its loopback address.
func TestInviteCodeLeavesLoopbackOut(t *testing.T) {
	priv, _ := testKey(t)
	gate := NewTrustGate()
	rm, err := newResourceManager(gate)
	if err != nil {
		t.Fatal(err)
	}
	// Announced only, never dialed: the test sends nothing off loopback.
	lan := transporttest.Multiaddrs(t, "/ip4/192.168.77.10/tcp/4433", "/ip4/203.0.113.7/udp/4433/quic-v1")
	h, err := newNode(nodeConfig{priv: priv, listen: []string{"/ip4/127.0.0.1/tcp/0"}, gater: gate, rm: rm,
		addrsFactory: func(addrs []ma.Multiaddr) []ma.Multiaddr { return append(addrs, lan...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if !slices.ContainsFunc(h.Addrs(), manet.IsIPLoopback) {
		t.Fatalf("the host's addresses %v have no loopback one; the test needs one", h.Addrs())
	}
	p := pair.Serve(h, gate, func(peer.ID, string, string) error { return nil }, nil)
	code, _, err := p.NewInvite("access", "", time.Hour, h.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	c, err := pair.DecodeInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	got := transporttest.AddrStrings(c.Addrs)
	slices.Sort(got)
	want := transporttest.AddrStrings(lan)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the code carries %q, want the LAN and public addresses %q and no loopback one", got, want)
	}
}
