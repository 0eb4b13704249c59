package pair

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"
)

// At most MaxGuests strangers are in at once as guests, and none
// without an invite open; past them, as many again are let in to hear
// pairing is busy, and no more: the busy answer holds bounded room. A busy
// stranger takes a guest's slot once one is free.
func TestPairingGuestsBounded(t *testing.T) {
	p := NewPairing(test.RandPeerIDFatal(t), nil)
	if p.AdmitGuest(test.RandPeerIDFatal(t)) {
		t.Fatal("a guest admitted with no invite open")
	}
	if _, _, err := p.NewInvite("access", "", time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	var in []peer.ID
	for i := 0; i < MaxGuests+maxBusyGuests; i++ {
		g := test.RandPeerIDFatal(t)
		if !p.AdmitGuest(g) {
			t.Fatalf("stranger %d refused", i)
		}
		in = append(in, g)
	}
	counts := func() (guests, busy int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.countLocked()
	}
	if guests, busy := counts(); guests != MaxGuests || busy != maxBusyGuests {
		t.Fatalf("%d guests and %d busy, want %d and %d", guests, busy, MaxGuests, maxBusyGuests)
	}
	if p.AdmitGuest(test.RandPeerIDFatal(t)) {
		t.Fatalf("stranger %d admitted past the guests and the busy ones", MaxGuests+maxBusyGuests+1)
	}
	busy := in[MaxGuests]
	if ok, guests := p.mayRedeem(busy); ok || guests != MaxGuests {
		t.Fatalf("a busy stranger may redeem = %v with %d guests, want refused with %d", ok, guests, MaxGuests)
	}
	p.left(in[0])
	if ok, _ := p.mayRedeem(busy); !ok {
		t.Fatal("a busy stranger may not redeem though a guest's slot is free")
	}
	if guests, busy := counts(); guests != MaxGuests || busy != maxBusyGuests-1 {
		t.Fatalf("%d guests and %d busy after a busy one took a free slot, want %d and %d", guests, busy, MaxGuests, maxBusyGuests-1)
	}
}
