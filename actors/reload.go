package actors

import (
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
)

// setRelays replaces the relays the node keeps a reservation on. The device
// book admits them at the gate; the relay keeper reserves on new ones and
// stops renewing the ones that are gone.
type setRelays struct {
	relays []peer.AddrInfo
}

// setAllowedMounts replaces the host folders manifests may mount. The
// registry checks pulls against them and passes them to every service actor,
// which resolves mounts at its next start.
type setAllowedMounts struct {
	allowed []string
}

// SetRelays applies a new relays list from config.yaml without a restart.
func (n *Node) SetRelays(relays []peer.AddrInfo) {
	msg := &setRelays{relays: slices.Clone(relays)}
	// The gate must admit a new relay before the keeper dials it, or the
	// first reservation fails and waits for its retry.
	n.system.Root.RequestFuture(n.devices, msg, 5*time.Second).Wait()
	if n.relays != nil {
		n.system.Root.Send(n.relays, msg)
	}
}

// SetAllowedMounts applies a new mounts.allowed from config.yaml without a
// restart; services already running keep their mounts until they restart.
func (n *Node) SetAllowedMounts(allowed []string) {
	msg := &setAllowedMounts{allowed: slices.Clone(allowed)}
	n.system.Root.Send(n.registry, msg)
	for _, pid := range n.runtimes {
		n.system.Root.Send(pid, msg)
	}
}

// setRelays on the keeper: reserve on the new relays at once, forget the
// removed ones (a pending retry of theirs finds no state and is dropped).
func (k *relayKeeper) setRelays(ctx actor.Context, msg *setRelays) {
	k.relays = msg.relays
	keep := map[peer.ID]bool{}
	for _, r := range msg.relays {
		keep[r.ID] = true
		if s, ok := k.state[r.ID]; ok {
			s.info = r
			continue
		}
		k.state[r.ID] = &relayState{info: r}
		k.reserve(ctx, r.ID)
	}
	for id, s := range k.state {
		if !keep[id] && !s.found {
			delete(k.state, id)
		}
	}
	k.hunt(ctx)
}

// setAllowedMounts on the registry: later pulls are checked against the new
// list, and every service actor gets it for its next start.
func (r *serviceRegistry) setAllowedMounts(ctx actor.Context, msg *setAllowedMounts) {
	r.allowedMounts = msg.allowed
	for _, pid := range ctx.Children() {
		ctx.Send(pid, msg)
	}
}
