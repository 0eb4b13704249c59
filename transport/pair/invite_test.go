package pair

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/transport/transporttest"
)

// A code carries relayed, public and LAN addresses, relayed first, and
// leaves out loopback (a circuit through a loopback relay included) and
// unspecified ones; a node with loopback addresses only keeps them, for
// it can be joined from its own machine only.
func TestCodeAddrs(t *testing.T) {
	_, relay := transporttest.Key(t)
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
			if got := transporttest.AddrStrings(codeAddrs(transporttest.Multiaddrs(t, c.in...))); !slices.Equal(got, c.want) {
				t.Fatalf("code addresses\n got  %q\n want %q", got, c.want)
			}
		})
	}
}

// Codes that are not a fungi invite, or that exceed a bound, are refused
// before anything is dialed.
func TestDecodeInviteCodeRefuses(t *testing.T) {
	for _, code := range []string{"", "hello", "fungi1-!!!", "fungi1-" + strings.Repeat("A", MaxInviteCode)} {
		if _, err := DecodeInviteCode(code); !errors.Is(err, ErrInvite) {
			t.Errorf("DecodeInviteCode(%.20q) = %v, want ErrInvite", code, err)
		}
	}
}
