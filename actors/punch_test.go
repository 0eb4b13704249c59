package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/transport"
)

// fakePuncher is a network with one relayed connection whose punches
// answer from a script, recording when each was tried.
type fakePuncher struct {
	id peer.ID

	mu      sync.Mutex
	answers []error // one per punch; the last repeats
	tries   []time.Time
	next    time.Time
	learned []func()
}

func (f *fakePuncher) RelayedOnly() []peer.ID { return []peer.ID{f.id} }
func (f *fakePuncher) HolePunch(_ context.Context, p peer.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries = append(f.tries, time.Now())
	err := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	return err
}
func (f *fakePuncher) SetPunchNext(_ peer.ID, at time.Time) {
	f.mu.Lock()
	f.next = at
	f.mu.Unlock()
}
func (f *fakePuncher) ForgetPunch(peer.ID)         {}
func (f *fakePuncher) OnAddrsChanged(func()) error { return nil }
func (f *fakePuncher) OnPublicAddrLearned(g func()) error {
	f.mu.Lock()
	f.learned = append(f.learned, g)
	f.mu.Unlock()
	return nil
}

func (f *fakePuncher) triesAtLeast(n int) func() error {
	return func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.tries) < n {
			return fmt.Errorf("%d punches, want %d", len(f.tries), n)
		}
		return nil
	}
}

func startKeeper(t *testing.T, f *fakePuncher, timing punchTiming) {
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	system.Root.Spawn(punchKeeperPropsTimed(f, timing))
}

// A try that found libp2p's own punch still running is neither a success
// nor a failure: the keeper tries again at its next look, not after the
// backoff of a success (the bug: 30 s later).
func TestPunchKeeperRetriesSoonAfterOverlappingPunch(t *testing.T) {
	f := &fakePuncher{id: test.RandPeerIDFatal(t),
		answers: []error{transport.ErrPunchInProgress, errors.New("all retries for hole punch failed")}}
	startKeeper(t, f, punchTiming{firstTry: 0, firstBackoff: time.Hour, maxBackoff: time.Hour,
		addrRetry: time.Hour, checkEvery: 50 * time.Millisecond, timeout: time.Second})
	testutil.WaitFor(t, 10*time.Second, "a punch after the overlapping one", f.triesAtLeast(2))
	// The failure of the real try schedules the next after the backoff,
	// and connection list says so.
	testutil.WaitFor(t, 10*time.Second, "the next try after the backoff", func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if until := time.Until(f.next); until < 50*time.Minute {
			return fmt.Errorf("next try in %s, want about an hour", until)
		}
		return nil
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tries) != 2 {
		t.Fatalf("%d punches, want 2 (one overlapping, one failed)", len(f.tries))
	}
}

// A connection that could not be punched for want of this node's public
// address is punched as soon as a peer tells the node one, not at the
// keeper's next look.
func TestPunchKeeperPunchesWhenPublicAddrLearned(t *testing.T) {
	f := &fakePuncher{id: test.RandPeerIDFatal(t),
		answers: []error{transport.ErrNoPublicAddr, nil}}
	startKeeper(t, f, punchTiming{firstTry: 0, firstBackoff: time.Hour, maxBackoff: time.Hour,
		addrRetry: time.Hour, checkEvery: time.Hour, timeout: time.Second})
	testutil.WaitFor(t, 10*time.Second, "the first punch", f.triesAtLeast(1))
	f.mu.Lock()
	learned := f.learned
	f.mu.Unlock()
	if len(learned) != 1 {
		t.Fatalf("%d listeners for learned addresses, want 1", len(learned))
	}
	learned[0]()
	testutil.WaitFor(t, 5*time.Second, "a punch once the address is known", f.triesAtLeast(2))
}

// After a punch that ran, an address change brings the next try forward
// only to addrRetry after it, so a flapping network does not punch in a
// loop.
func TestPunchKeeperAddrChangeRespectsAddrRetry(t *testing.T) {
	f := &fakePuncher{id: test.RandPeerIDFatal(t), answers: []error{errors.New("failed")}}
	startKeeper(t, f, punchTiming{firstTry: 0, firstBackoff: time.Hour, maxBackoff: time.Hour,
		addrRetry: 300 * time.Millisecond, checkEvery: 20 * time.Millisecond, timeout: time.Second})
	testutil.WaitFor(t, 10*time.Second, "the first punch", f.triesAtLeast(1))
	testutil.WaitFor(t, 10*time.Second, "the backoff", func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if time.Until(f.next) < 50*time.Minute {
			return errors.New("not yet")
		}
		return nil
	})
	f.mu.Lock()
	learned, first := f.learned[0], f.tries[0]
	f.mu.Unlock()
	learned()
	testutil.WaitFor(t, 10*time.Second, "a punch after the address change", f.triesAtLeast(2))
	f.mu.Lock()
	defer f.mu.Unlock()
	if gap := f.tries[1].Sub(first); gap < 300*time.Millisecond {
		t.Fatalf("second punch %s after the first, want at least addrRetry", gap)
	}
}
