// Package transporttest starts real libp2p hosts for the tests of
// transport and of its protocol packages (access, pair), and trusts them
// to each other. It does not import transport, so that transport's own
// tests use it as the protocol packages' tests do: a test names the host
// it wants by a Start function (Starter(transport.NewTrustGate,
// transport.NewHost)).
package transporttest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/testutil"

	"github.com/fungi-go/fungi/messages"
)

// Loopback addresses for a test host to listen on, LoopbackTCP unless the
// test says otherwise: nothing it sends leaves the machine.
const (
	LoopbackTCP  = "/ip4/127.0.0.1/tcp/0"
	LoopbackQUIC = "/ip4/127.0.0.1/udp/0/quic-v1"
)

// Gate is what the helpers ask of a host's trust gate (transport.TrustGate).
type Gate interface {
	Set(roles map[peer.ID]string, dial map[peer.ID]bool)
}

// Start starts a host with priv, listening on listen, and returns it with
// its gate, which admits nobody yet.
type Start[G Gate] func(priv crypto.PrivKey, listen []string) (host.Host, G, error)

// Starter is the Start of a node's host: a new gate from newGate, the
// host from newHost (transport.NewTrustGate, transport.NewHost), with no
// relays and no port mapping, so that a test sends nothing off the
// machine.
func Starter[G Gate, R any](newGate func() G, newHost func(crypto.PrivKey, []string, G, R, bool) (host.Host, error)) Start[G] {
	return func(priv crypto.PrivKey, listen []string) (host.Host, G, error) {
		g := newGate()
		var noRelays R
		h, err := newHost(priv, listen, g, noRelays, false)
		return h, g, err
	}
}

// Host starts a real host with start on each of listen (TCP, QUIC), with a
// new identity, and closes it when the test ends.
func Host[G Gate](t testing.TB, start Start[G], listen ...string) (host.Host, G) {
	t.Helper()
	priv, _ := Key(t)
	h, g, err := start(priv, listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, g
}

// Pair starts two real hosts on loopback TCP: client is trusted by server
// with role, and server is a dial target of client.
func Pair[G Gate](t testing.TB, start Start[G], role string) (client, server host.Host, serverGate G) {
	t.Helper()
	client, clientGate := Host(t, start, LoopbackTCP)
	server, serverGate = Host(t, start, LoopbackTCP)
	TrustEachOther(client, clientGate, server, serverGate, role)
	return client, server, serverGate
}

// TrustEachOther makes server trust client with role, and client dial server.
func TrustEachOther[G Gate](client host.Host, clientGate G, server host.Host, serverGate G, role string) {
	clientGate.Set(map[peer.ID]string{}, map[peer.ID]bool{server.ID(): true})
	serverGate.Set(map[peer.ID]string{client.ID(): role}, map[peer.ID]bool{})
	client.Peerstore().AddAddrs(server.ID(), server.Addrs(), time.Hour)
}

// ShutOut checks the gate of p refuses h: the handshake may complete on
// h's side (TLS 1.3 finishes before the other side's check), so it waits
// for p to close the connection, and the pairing protocol must fail.
func ShutOut(t *testing.T, h host.Host, p peer.ID, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h.Connect(ctx, peer.AddrInfo{ID: p})
	cancel()
	testutil.WaitFor(t, 20*time.Second, who+" shut out", func() error {
		if h.Network().Connectedness(p) == network.Connected {
			return errors.New("still connected")
		}
		return nil
	})
}

// Key is a new identity for a test's peer.
func Key(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

// ClosedLoopbackAddr is a loopback TCP address nobody listens on (a port
// just given back), for a peer that is down.
func ClosedLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// EchoControl is a control handler (transport.ControlHandler) that answers
// every request with one envelope, for tests that only need an answer.
func EchoControl(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
	return reply(&messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}})
}

// Multiaddrs parses ss; one that is not a multiaddr panics (ma.StringCast).
func Multiaddrs(t testing.TB, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

// AddrStrings is as in their string form.
func AddrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
