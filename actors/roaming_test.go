package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/testutil"
)

// countingNet is a PeerNetwork whose relays always grant an hour-long
// reservation, counting the requests.
type countingNet struct{ reserves atomic.Int64 }

func (*countingNet) SetGate(map[peer.ID]string, map[peer.ID]bool) {}
func (*countingNet) AddAddrs(peer.ID, []ma.Multiaddr)             {}
func (*countingNet) ClosePeer(peer.ID)                            {}
func (*countingNet) Connect(context.Context, peer.ID) error       { return errors.New("offline") }
func (*countingNet) Connected(peer.ID) bool                       { return false }
func (*countingNet) Ping(context.Context, peer.ID) (time.Duration, error) {
	return 0, errors.New("offline")
}
func (n *countingNet) Reserve(context.Context, peer.AddrInfo) (time.Time, error) {
	n.reserves.Add(1)
	return time.Now().Add(time.Hour), nil
}

// Roaming: when the node's addresses change, the relay keeper takes its
// reservation again at once instead of waiting for half its hour.
func TestRelayKeeperReservesAgainWhenAddressesChange(t *testing.T) {
	old := relayAddrRetry
	relayAddrRetry = 0
	t.Cleanup(func() { relayAddrRetry = old })
	net := &countingNet{}
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	pid := system.Root.Spawn(relayKeeperProps([]peer.AddrInfo{{ID: test.RandPeerIDFatal(t)}}, net))
	want := func(n int64) func() error {
		return func() error {
			if got := net.reserves.Load(); got != n {
				return fmt.Errorf("%d reservations, want %d", got, n)
			}
			return nil
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the first reservation", want(1))
	system.Root.Send(pid, &addrsChanged{})
	testutil.WaitFor(t, 10*time.Second, "a reservation after the address change", want(2))
}
