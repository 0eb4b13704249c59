package pair_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/pair"
	"github.com/fungi-go/fungi/transport/transporttest"
	"github.com/fungi-go/fungi/transport/wire"
)

// inviter is a real host serving pairing, whose "device book" is a map the
// paired callback writes, as the daemon's trusts through the actor.
type inviter struct {
	h       host.Host
	gate    *transport.TrustGate
	pairing *pair.Pairing
	mu      sync.Mutex
	roles   map[peer.ID]string
}

func newInviter(t *testing.T) *inviter {
	return newInviterOn(t, transporttest.LoopbackTCP)
}

// newInviterOn is newInviter listening on each of listen (TCP, QUIC).
func newInviterOn(t *testing.T, listen ...string) *inviter {
	t.Helper()
	h, g := transporttest.Host(t, startHost, listen...)
	in := &inviter{h: h, gate: g, roles: map[peer.ID]string{}}
	in.pairing = pair.Serve(h, g, func(p peer.ID, role, alias string) error {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.roles[p] = role
		roles := map[peer.ID]string{}
		for k, v := range in.roles {
			roles[k] = v
		}
		g.Set(roles, map[peer.ID]bool{})
		return nil
	}, nil)
	transport.ServeControl(h, g, transporttest.EchoControl)
	return in
}

// newJoiner is a real host that dials the inviter, as `device join` makes
// the inviter a dial target.
func newJoiner(t *testing.T, in *inviter) host.Host {
	h, g := transporttest.Host(t, startHost, transporttest.LoopbackTCP)
	g.Set(map[peer.ID]string{}, map[peer.ID]bool{in.h.ID(): true})
	h.Peerstore().AddAddrs(in.h.ID(), in.h.Addrs(), time.Hour)
	return h
}

func (in *inviter) invite(t *testing.T, role string, ttl time.Duration) *pair.InviteCode {
	t.Helper()
	code, _, err := in.pairing.NewInvite(role, "", ttl, in.h.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	c, err := pair.DecodeInviteCode(code)
	if err != nil {
		t.Fatalf("decode our own code %q: %v", code, err)
	}
	if c.PeerID != in.h.ID() || len(c.Addrs) == 0 {
		t.Fatalf("the code names %s at %v, want %s at its addresses", c.PeerID, c.Addrs, in.h.ID())
	}
	return c
}

func connect(h host.Host, p peer.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.Connect(ctx, peer.AddrInfo{ID: p})
}

func pairWith(h host.Host, c *pair.InviteCode) (string, error) {
	if err := connect(h, c.PeerID); err != nil {
		return "", err
	}
	return pair.Join(context.Background(), h, c)
}

func wantRefusal(t *testing.T, err error, contains string) {
	t.Helper()
	var re *wire.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, contains) {
		t.Fatalf("got %v, want a refusal saying %q", err, contains)
	}
}

func callControl(h host.Host, p peer.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return transport.CallControl(ctx, h, p, &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}, func(*messages.Envelope) error { return nil })
}

// A stranger is refused at the handshake and listed as pending; while an
// invite is open it gets in as a guest that may pair and use nothing else;
// a wrong secret is refused and shuts it out; the right one trusts the
// joiner with the invite's role; a used or expired invite is refused with
// its reason; and once the last invite closes, guests are put out.
func TestPairing(t *testing.T) {
	in := newInviter(t)
	stranger := newJoiner(t, in)

	transporttest.ShutOut(t, stranger, in.h.ID(), "a stranger with no invite open")
	pending := in.gate.Pending()
	if len(pending) != 1 || pending[0].ID != stranger.ID() || pending[0].Attempts < 1 || pending[0].Addr == "" {
		t.Fatalf("pending = %+v, want the stranger with its address", pending)
	}

	code := in.invite(t, "admin", time.Hour)
	if err := connect(stranger, in.h.ID()); err != nil {
		t.Fatalf("a guest could not connect while an invite is open: %v", err)
	}
	if err := callControl(stranger, in.h.ID()); err == nil {
		t.Fatal("a pairing guest used the control protocol")
	}

	// A wrong secret: refused, the guest is shut out, nothing is trusted.
	wrong := *code
	wrong.Secret = append([]byte{}, code.Secret...)
	wrong.Secret[0] ^= 1
	_, err := pair.Join(context.Background(), stranger, &wrong)
	wantRefusal(t, err, "wrong")
	transporttest.ShutOut(t, stranger, in.h.ID(), "a guest with a wrong secret")
	if in.gate.Role(stranger.ID()) != "" {
		t.Fatal("a wrong secret was trusted")
	}

	// The right secret, from another device.
	joiner := newJoiner(t, in)
	role, err := pairWith(joiner, code)
	if err != nil || role != "admin" {
		t.Fatalf("pair = %q, %v; want admin", role, err)
	}
	if in.gate.Role(joiner.ID()) != "admin" {
		t.Fatal("the joiner is not trusted after pairing")
	}
	if err := callControl(joiner, in.h.ID()); err != nil {
		t.Fatalf("the paired device cannot use the control protocol: %v", err)
	}
	for _, p := range in.gate.Pending() {
		if p.ID == joiner.ID() {
			t.Fatal("a trusted device is still listed as pending")
		}
	}

	// The invite is used: with none open the door is shut again.
	transporttest.ShutOut(t, stranger, in.h.ID(), "a stranger after the only invite was used")

	// A replayed code is refused with its reason while another invite is
	// open; so is an expired one.
	other := in.invite(t, "access", time.Hour)
	short := in.invite(t, "access", 50*time.Millisecond)
	_, err = pairWith(stranger, code)
	wantRefusal(t, err, "it was used by "+joiner.ID().String())
	testutil.WaitFor(t, 10*time.Second, "the short invite expired", func() error {
		if n := in.pairing.Open(); n != 1 {
			return errors.New("still open")
		}
		return nil
	})
	late := newJoiner(t, in)
	_, err = pairWith(late, short)
	wantRefusal(t, err, "it expired at")

	// A guest that never pairs is put out when the last invite is used.
	idle := newJoiner(t, in)
	if err := connect(idle, in.h.ID()); err != nil {
		t.Fatal(err)
	}
	third := newJoiner(t, in)
	if role, err := pairWith(third, other); err != nil || role != "access" {
		t.Fatalf("pair = %q, %v; want access", role, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the idle guest put out", func() error {
		if idle.Network().Connectedness(in.h.ID()) == network.Connected {
			return errors.New("still connected")
		}
		return nil
	})
}
