package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
)

// AutoRelay with nothing configured: a node that is not publicly reachable
// and whose configured relays give it fewer than wantRelays slots takes
// slots on relays found through the DHT (public nodes that offer
// circuit-relay v2), so two devices behind NAT meet with `relays: []`.
// Configured relays stay preferred: they count first, and found relays
// are let go when the configured ones are enough or the node turns out to
// be publicly reachable.

// RelayFinder is a PeerNetwork that finds relays through the DHT.
type RelayFinder interface {
	// FindRelays are up to max relays, none of skip.
	FindRelays(ctx context.Context, max int, skip []peer.ID) []peer.AddrInfo
}

// reachabilityReporter says what AutoNAT thinks of this node: "public",
// "private" or "unknown".
type reachabilityReporter interface{ Reachability() string }

const (
	// wantRelays is how many relay slots a node behind NAT keeps.
	wantRelays = 2
	// foundRelayMaxFails is how many reservations in a row a found relay
	// may fail before another is looked for: with the keeper's backoff,
	// about 15 s, longer than a move between networks, during which every
	// try fails (and a change of network starts the count again).
	foundRelayMaxFails = 5
	// relayHuntTimeout bounds one search through the DHT.
	relayHuntTimeout = 20 * time.Second
)

// relayHuntEvery is how often the keeper checks whether it has enough
// relays, and relayHuntRetry how soon it looks again after a search that
// found too few; variables so a test can shorten them.
var (
	relayHuntEvery = 30 * time.Second
	relayHuntRetry = 5 * time.Second
)

type huntDue struct{ gen uint64 }

type relaysFound struct {
	relays []peer.AddrInfo
	need   int // how many were looked for
}

// hunt looks for relays through the DHT when this node needs some, and
// lets found ones go when it does not.
func (k *relayKeeper) hunt(ctx actor.Context) {
	finder, ok := k.net.(RelayFinder)
	if !ok || k.hunting {
		return
	}
	need := wantRelays
	for _, s := range k.state {
		if !s.found && s.backoff == 0 {
			need-- // a configured relay that works or is being tried
		}
	}
	if r, ok := k.net.(reachabilityReporter); ok && r.Reachability() == "public" {
		need = 0
	}
	var found []peer.ID
	for id, s := range k.state {
		if s.found {
			found = append(found, id)
		}
	}
	for len(found) > max(need, 0) {
		id := found[len(found)-1]
		found = found[:len(found)-1]
		delete(k.state, id)
		ctx.Logger().Info("relay found through the DHT let go: enough relays without it", "relay", id.String())
	}
	need -= len(found)
	if need <= 0 {
		k.huntLater(ctx, relayHuntEvery)
		return
	}
	skip := make([]peer.ID, 0, len(k.state))
	for id := range k.state {
		skip = append(skip, id)
	}
	k.hunting = true
	self, system := ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), relayHuntTimeout)
		defer cancel()
		system.Root.Send(self, &relaysFound{relays: finder.FindRelays(c, need, skip), need: need})
	}()
}

// huntLater checks again after wait.
func (k *relayKeeper) huntLater(ctx actor.Context, wait time.Duration) {
	k.huntGen++
	gen, self, system := k.huntGen, ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(wait, func() { system.Root.Send(self, &huntDue{gen: gen}) })
}

// relaysFound takes a slot on each relay the DHT offered.
func (k *relayKeeper) relaysFound(ctx actor.Context, msg *relaysFound) {
	k.hunting = false
	for _, r := range msg.relays {
		if _, ok := k.state[r.ID]; ok {
			continue
		}
		k.state[r.ID] = &relayState{info: r, found: true}
		ctx.Logger().Info("relay found through the DHT", "relay", r.ID.String())
		k.reserve(ctx, r.ID)
	}
	if len(msg.relays) < msg.need {
		k.huntLater(ctx, relayHuntRetry)
		return
	}
	k.huntLater(ctx, relayHuntEvery)
}

// foundDone handles a found relay's reservation result; it reports true
// when the relay was given up (another is looked for at once).
func (k *relayKeeper) foundDone(ctx actor.Context, s *relayState, msg *reserveDone) bool {
	if msg.err == nil {
		s.fails = 0
		return false
	}
	s.fails++
	if s.fails < foundRelayMaxFails {
		return false
	}
	delete(k.state, msg.id)
	ctx.Logger().Warn("relay found through the DHT refused a slot; looking for another", "relay", msg.id.String(), "err", msg.err)
	k.hunt(ctx)
	return true
}
