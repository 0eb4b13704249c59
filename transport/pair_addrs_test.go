package transport

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func multiaddrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// A code carries relayed, public and LAN addresses, relayed first, and
// leaves out loopback (a circuit through a loopback relay included) and
// unspecified ones; a node with loopback addresses only keeps them, for
// it can be joined from its own machine only.
func TestCodeAddrs(t *testing.T) {
	_, relay := testKey(t)
	circuit := "/ip4/203.0.113.9/udp/4001/quic-v1/p2p/" + relay.String() + "/p2p-circuit"
	for _, c := range []struct {
		name     string
		in, want []string
	}{
		{
			name: "mixed",
			in: []string{
				"/ip4/127.0.0.1/tcp/4433", "/ip4/127.8.9.10/udp/4433/quic-v1", "/ip6/::1/tcp/4433",
				"/ip4/0.0.0.0/tcp/4433", "/ip6/::/udp/4433/quic-v1", "/dns/localhost/tcp/4433",
				"/ip4/127.0.0.1/tcp/4001/p2p/" + relay.String() + "/p2p-circuit",
				"/ip4/192.168.1.20/tcp/4433", "/ip4/10.0.0.5/udp/4433/quic-v1", "/ip6/fd00::2/tcp/4433",
				"/ip4/203.0.113.7/tcp/4433", "/dns4/home.example.org/tcp/4433",
				circuit,
			},
			want: []string{
				circuit,
				"/ip4/192.168.1.20/tcp/4433", "/ip4/10.0.0.5/udp/4433/quic-v1", "/ip6/fd00::2/tcp/4433",
				"/ip4/203.0.113.7/tcp/4433", "/dns4/home.example.org/tcp/4433",
			},
		},
		{
			name: "loopback only",
			in:   []string{"/ip4/0.0.0.0/tcp/4433", "/ip4/127.0.0.1/tcp/4433", "/ip6/::1/udp/4433/quic-v1"},
			want: []string{"/ip4/127.0.0.1/tcp/4433", "/ip6/::1/udp/4433/quic-v1"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := addrStrings(codeAddrs(multiaddrs(t, c.in...))); !slices.Equal(got, c.want) {
				t.Fatalf("code addresses\n got  %q\n want %q", got, c.want)
			}
		})
	}
}

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
	lan := multiaddrs(t, "/ip4/192.168.77.10/tcp/4433", "/ip4/203.0.113.7/udp/4433/quic-v1")
	h, err := newNode(nodeConfig{priv: priv, listen: []string{"/ip4/127.0.0.1/tcp/0"}, gater: gate, rm: rm,
		addrsFactory: func(addrs []ma.Multiaddr) []ma.Multiaddr { return append(addrs, lan...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if !slices.ContainsFunc(h.Addrs(), isLoopback) {
		t.Fatalf("the host's addresses %v have no loopback one; the test needs one", h.Addrs())
	}
	p := ServePair(h, gate, func(peer.ID, string, string) error { return nil })
	code, _, err := p.NewInvite("access", "", time.Hour, h.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeInviteCode(code)
	if err != nil {
		t.Fatal(err)
	}
	got := addrStrings(c.Addrs)
	slices.Sort(got)
	want := addrStrings(lan)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the code carries %q, want the LAN and public addresses %q and no loopback one", got, want)
	}
}

// Two nodes on one machine, listening on loopback only, still pair with
// nothing but the code: its loopback address is all the inviter has.
func TestInviteCodeOnLoopbackOnly(t *testing.T) {
	in := newInviter(t)
	code := in.invite(t, "access", time.Hour)
	for _, a := range code.Addrs {
		if !isLoopback(a) {
			t.Fatalf("the code of a node on loopback only carries %s", a)
		}
	}
	joiner, gate := newTestHost(t)
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{in.h.ID(): true})
	joiner.Peerstore().AddAddrs(code.PeerID, code.Addrs, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := joiner.Connect(ctx, peer.AddrInfo{ID: code.PeerID}); err != nil {
		t.Fatalf("connect with the code's addresses %v: %v", code.Addrs, err)
	}
	if role, err := Pair(ctx, joiner, code); err != nil || role != "access" {
		t.Fatalf("pair = %q, %v; want access", role, err)
	}
}
