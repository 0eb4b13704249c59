package transport

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The retry of a user's stream keys on libp2p's own backoff error, as a
// real swarm reports it: a dial refused for backoff is recognised, and the
// failure that caused the backoff (nobody listening) is not, so a peer
// that is really down is not dialed twice.
func TestInDialBackoffKnowsLibp2psBackoffError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	client, gate := newTestHost(t)
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	down, _ := peer.IDFromPrivateKey(key)
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{down: true})
	client.Peerstore().AddAddr(down, ma.StringCast("/ip4/127.0.0.1/tcp/"+strconv.Itoa(port)), time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first := client.Connect(ctx, peer.AddrInfo{ID: down})
	if first == nil {
		t.Fatal("a dial to a closed port succeeded")
	}
	if inDialBackoff(first) {
		t.Fatalf("the refused dial itself was taken for backoff: %v", first)
	}
	again := client.Connect(ctx, peer.AddrInfo{ID: down})
	if again == nil || !inDialBackoff(again) {
		t.Fatalf("the dial right after a failure was not recognised as in backoff: %v", again)
	}
	freshDial(client, down)
	if err := client.Connect(ctx, peer.AddrInfo{ID: down}); err == nil || inDialBackoff(err) {
		t.Fatalf("after freshDial the dial still met the backoff: %v", err)
	}
}
