package pair_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/transport/pair"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// joinerOf is a real host on listen that may dial the code's inviter, at
// the addresses of the code that use transport (tcp or quic-v1) only.
func joinerOf(t *testing.T, code *pair.InviteCode, listen, transport string) host.Host {
	t.Helper()
	h, g := transporttest.Host(t, startHost, listen)
	g.Set(map[peer.ID]string{}, map[peer.ID]bool{code.PeerID: true})
	dialOnly(t, h, code, transport)
	return h
}

// dialOnly leaves h knowing the inviter at its addresses over transport.
func dialOnly(t *testing.T, h host.Host, code *pair.InviteCode, transport string) {
	t.Helper()
	var addrs []ma.Multiaddr
	for _, a := range code.Addrs {
		if _, err := a.ValueForProtocol(ma.ProtocolWithName(transport).Code); err == nil {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("the code carries no %s address: %v", transport, code.Addrs)
	}
	h.Peerstore().ClearAddrs(code.PeerID)
	h.Peerstore().AddAddrs(code.PeerID, addrs, time.Hour)
}

// An inviter reached directly, listening on QUIC alone or TCP alone, can
// be paired with by invite code: the joiner is a stranger until its proof
// lands, and QUIC counts its connection against it before the gate has
// made it a guest (issue 21: "open the pairing stream: connection failed"
// whenever the inviter could be reached directly over QUIC).
func TestPairByInviteDirect(t *testing.T) {
	for _, tc := range []struct{ listen, transport string }{{transporttest.LoopbackQUIC, "quic-v1"}, {transporttest.LoopbackTCP, "tcp"}} {
		t.Run(tc.transport, func(t *testing.T) {
			in := newInviterOn(t, tc.listen)
			code := in.invite(t, "access", time.Hour)
			joiner := joinerOf(t, code, tc.listen, tc.transport)
			role, err := pairWith(joiner, code)
			if err != nil || role != "access" {
				t.Fatalf("pair over %s = %q, %v; want access", tc.transport, role, err)
			}
			if err := callControl(joiner, in.h.ID()); err != nil {
				t.Fatalf("the paired device cannot use the control protocol: %v", err)
			}
		})
	}
}

// A stranger that knocks over QUIC before any invite is open is refused
// by the gate and listed as pending, as one over TCP is; once invited it
// pairs, over TCP or QUIC, at once: what it met before the invite does
// not keep holding it to a stranger's limits.
func TestPairAfterRefusalOverQUIC(t *testing.T) {
	for _, then := range []string{"tcp", "quic-v1"} {
		t.Run(then, func(t *testing.T) {
			in := newInviterOn(t, transporttest.LoopbackTCP, transporttest.LoopbackQUIC)
			// A code only to learn the inviter's addresses; it is used
			// up by another device before the stranger knocks.
			first := in.invite(t, "access", time.Hour)
			other := joinerOf(t, first, transporttest.LoopbackTCP, "tcp")
			if _, err := pairWith(other, first); err != nil {
				t.Fatal(err)
			}

			stranger := joinerOf(t, first, transporttest.LoopbackQUIC, "quic-v1")
			transporttest.ShutOut(t, stranger, in.h.ID(), "a stranger over QUIC with no invite open")
			pending := in.gate.Pending()
			if len(pending) != 1 || pending[0].ID != stranger.ID() {
				t.Fatalf("pending = %+v, want the stranger that knocked over QUIC", pending)
			}

			code := in.invite(t, "admin", time.Hour)
			dialOnly(t, stranger, code, then)
			role, err := pairWith(stranger, code)
			if err != nil || role != "admin" {
				t.Fatalf("pair over %s after a refusal over QUIC = %q, %v; want admin", then, role, err)
			}
		})
	}
}

// holdProtocol is a test protocol whose streams stay open: the server
// writes one byte and waits for the client to close.
const holdProtocol = "/fungi-test/hold/1.0.0"

// openHeld opens streams from h to p on holdProtocol until one is refused
// or max are open, and returns those open.
func openHeld(t *testing.T, h host.Host, p peer.ID, max int) []network.Stream {
	t.Helper()
	var held []network.Stream
	t.Cleanup(func() { closeAll(held) })
	for len(held) < max {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := h.NewStream(ctx, p, holdProtocol)
		cancel()
		if err != nil {
			break
		}
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			s.Reset()
			break
		}
		held = append(held, s)
	}
	return held
}

// streamsOn counts h's open streams with p on proto.
func streamsOn(h host.Host, p peer.ID, proto protocol.ID) int {
	n := 0
	for _, c := range h.Network().ConnsToPeer(p) {
		for _, s := range c.GetStreams() {
			if s.Protocol() == proto {
				n++
			}
		}
	}
	return n
}

func closeAll(streams []network.Stream) {
	for _, s := range streams {
		s.Close()
	}
}

// A pairing guest gets the streams the pairing protocol needs and no
// more, over TCP and QUIC; once it has paired, the same connection
// carries a trusted device's.
func TestPairGuestStreamsBounded(t *testing.T) {
	for _, tc := range []struct{ listen, transport string }{{transporttest.LoopbackQUIC, "quic-v1"}, {transporttest.LoopbackTCP, "tcp"}} {
		t.Run(tc.transport, func(t *testing.T) {
			in := newInviterOn(t, tc.listen)
			in.h.SetStreamHandler(holdProtocol, func(s network.Stream) {
				s.Write([]byte{1})
				io.Copy(io.Discard, s)
				s.Reset()
			})
			code := in.invite(t, "access", time.Hour)
			joiner := joinerOf(t, code, tc.listen, tc.transport)
			if err := connect(joiner, in.h.ID()); err != nil {
				t.Fatal(err)
			}
			const many = 3 * 12
			held := openHeld(t, joiner, in.h.ID(), many)
			if n := len(held); n == 0 || n > pair.GuestLimits.StreamsInbound {
				t.Fatalf("a pairing guest held %d streams open, want between 1 and %d", n, pair.GuestLimits.StreamsInbound)
			}
			// A guest that holds all its streams has none left to pair
			// with; this one lets them go.
			closeAll(held)
			testutil.WaitFor(t, 10*time.Second, "the guest's held streams closed on the inviter", func() error {
				if n := streamsOn(in.h, joiner.ID(), holdProtocol); n != 0 {
					return fmt.Errorf("%d still open", n)
				}
				return nil
			})
			if role, err := pair.Join(context.Background(), joiner, code); err != nil || role != "access" {
				t.Fatalf("pair = %q, %v; want access", role, err)
			}
			if n := len(openHeld(t, joiner, in.h.ID(), many)); n != many {
				t.Fatalf("a paired device held %d streams open on the connection it paired on, want %d", n, many)
			}
		})
	}
}

// A joiner whose streams open while the inviter is trusting it, between
// its proof and its trust (its session, identify), keeps its connection
// and hears the answer: over TCP a stream the joiner's peer scope has no
// memory for tears the whole yamux connection down.
func TestPairJoinerStreamsWhileBeingTrusted(t *testing.T) {
	for _, tc := range []struct{ listen, transport string }{{transporttest.LoopbackTCP, "tcp"}, {transporttest.LoopbackQUIC, "quic-v1"}} {
		t.Run(tc.transport, func(t *testing.T) {
			h, g := transporttest.Host(t, startHost, tc.listen)
			trusting, trust := make(chan struct{}), make(chan struct{})
			pairing := pair.Serve(h, g, func(p peer.ID, role, _ string) error {
				close(trusting)
				<-trust
				g.Set(map[peer.ID]string{p: role}, map[peer.ID]bool{})
				return nil
			}, nil)
			h.SetStreamHandler(holdProtocol, func(s network.Stream) {
				s.Write([]byte{1})
				io.Copy(io.Discard, s)
				s.Reset()
			})
			in := &inviter{h: h, gate: g, pairing: pairing}
			code := in.invite(t, "access", time.Hour)
			joiner := joinerOf(t, code, tc.listen, tc.transport)
			if err := connect(joiner, h.ID()); err != nil {
				t.Fatal(err)
			}
			type result struct {
				role string
				err  error
			}
			paired := make(chan result, 1)
			go func() {
				role, err := pair.Join(context.Background(), joiner, code)
				paired <- result{role, err}
			}()
			select {
			case <-trusting:
			case r := <-paired:
				t.Fatalf("pair ended before the inviter trusted the joiner: %q, %v", r.role, r.err)
			}
			held := openHeld(t, joiner, h.ID(), 2)
			close(trust)
			r := <-paired
			if r.err != nil || r.role != "access" {
				t.Fatalf("pair = %q, %v; want access", r.role, r.err)
			}
			if len(held) != 2 {
				t.Fatalf("the joiner opened %d of 2 streams while the inviter trusted it", len(held))
			}
		})
	}
}

// Two nodes on one machine, listening on loopback only, still pair with
// nothing but the code: its loopback address is all the inviter has.
func TestInviteCodeOnLoopbackOnly(t *testing.T) {
	in := newInviter(t)
	code := in.invite(t, "access", time.Hour)
	for _, a := range code.Addrs {
		if !pair.IsLoopback(a) {
			t.Fatalf("the code of a node on loopback only carries %s", a)
		}
	}
	joiner, gate := transporttest.Host(t, startHost, transporttest.LoopbackTCP)
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{in.h.ID(): true})
	joiner.Peerstore().AddAddrs(code.PeerID, code.Addrs, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := joiner.Connect(ctx, peer.AddrInfo{ID: code.PeerID}); err != nil {
		t.Fatalf("connect with the code's addresses %v: %v", code.Addrs, err)
	}
	if role, err := pair.Join(ctx, joiner, code); err != nil || role != "access" {
		t.Fatalf("pair = %q, %v; want access", role, err)
	}
}
