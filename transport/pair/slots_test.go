package pair_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/transport/pair"
)

func waitSlots(t *testing.T, in *inviter, want int, what string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, func() error {
		if n := in.pairing.SlotsTaken(); n != want {
			return fmt.Errorf("%d slots taken, want %d", n, want)
		}
		return nil
	})
}

// waitGone waits until the inviter has no connection to h.
func waitGone(t *testing.T, in *inviter, h host.Host, what string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, func() error {
		if in.h.Network().Connectedness(h.ID()) == network.Connected {
			return errors.New("still connected")
		}
		return nil
	})
}

// strangers connects n new hosts to the inviter while an invite is open,
// each taking a slot, and returns them.
func strangers(t *testing.T, in *inviter, n int) []host.Host {
	t.Helper()
	var out []host.Host
	for i := 0; i < n; i++ {
		s := newJoiner(t, in)
		if err := connect(s, in.h.ID()); err != nil {
			t.Fatalf("stranger %d could not connect while an invite is open: %v", i, err)
		}
		out = append(out, s)
	}
	return out
}

// Eight strangers that connect once and go away leave no slot taken: the
// real joiner pairs at once, not after the invite expires.
func TestPairingSlotFreedWhenGuestLeaves(t *testing.T) {
	in := newInviter(t)
	code := in.invite(t, "access", time.Hour)
	gone := strangers(t, in, pair.MaxGuests)
	waitSlots(t, in, pair.MaxGuests, "every stranger in as a guest")
	for _, s := range gone {
		s.Network().ClosePeer(in.h.ID())
	}
	waitSlots(t, in, 0, "the slots of the strangers that left freed")

	joiner := newJoiner(t, in)
	if role, err := pairWith(joiner, code); err != nil || role != "access" {
		t.Fatalf("the joiner after eight strangers left: pair = %q, %v; want access", role, err)
	}
}

// A guest that idles past its window is put out and its slot freed, while
// the invite stays open for the real joiner.
func TestPairingGuestWindowEnds(t *testing.T) {
	in := newInviter(t)
	in.pairing.SetWindows(300*time.Millisecond, pair.BusyGuestWindow)
	code := in.invite(t, "admin", time.Hour)
	idle := strangers(t, in, 1)[0]
	waitGone(t, in, idle, "the idle guest put out after its window")
	waitSlots(t, in, 0, "the idle guest's slot freed")
	if n := in.pairing.Open(); n != 1 {
		t.Fatalf("%d invites open after a guest's window ended, want the 1 still open", n)
	}

	in.pairing.SetWindows(pair.GuestWindow, pair.BusyGuestWindow)
	joiner := newJoiner(t, in)
	if role, err := pairWith(joiner, code); err != nil || role != "admin" {
		t.Fatalf("pair = %q, %v; want admin", role, err)
	}
}

// With every guest slot taken the next stranger is let in only to hear
// that pairing is busy, and is put out; one idling in that state is put
// out after its short window; once a guest leaves, the same code works.
func TestPairingBusy(t *testing.T) {
	in := newInviter(t)
	code := in.invite(t, "access", time.Hour)
	guests := strangers(t, in, pair.MaxGuests)
	waitSlots(t, in, pair.MaxGuests, "every stranger in as a guest")

	ninth := newJoiner(t, in)
	_, err := pairWith(ninth, code)
	wantRefusal(t, err, "pairing is busy: 8 other devices are pairing with this node right now; try again in a few seconds")
	waitGone(t, in, ninth, "the stranger told pairing is busy put out")
	waitSlots(t, in, pair.MaxGuests, "its slot freed")

	in.pairing.SetWindows(pair.GuestWindow, 300*time.Millisecond)
	idle := strangers(t, in, 1)[0]
	waitGone(t, in, idle, "a stranger in to hear pairing is busy put out after its window")
	waitSlots(t, in, pair.MaxGuests, "its slot freed")

	guests[0].Network().ClosePeer(in.h.ID())
	waitSlots(t, in, pair.MaxGuests-1, "the slot of the guest that left freed")
	if role, err := pairWith(ninth, code); err != nil || role != "access" {
		t.Fatalf("the same code once a slot is free: pair = %q, %v; want access", role, err)
	}
	if in.gate.Role(ninth.ID()) != "access" {
		t.Fatal("the joiner is not trusted after pairing")
	}
}
