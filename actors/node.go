package actors

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// NodeConfig is what a node's actor tree is built from.
type NodeConfig struct {
	Home          *home.Home
	Providers     []runtimes.Provider
	AllowedMounts []string
	// Logger receives the actor system's own diagnostics; nil discards them.
	Logger *slog.Logger
	// Events receives the node's own events for the daemon log (service
	// state changes); nil discards them.
	Events *slog.Logger
	// Network is the peer host; nil runs a node without peers (tests).
	Network PeerNetwork
	// DialAccess opens access streams for the access forwarders.
	DialAccess AccessDialer
	// Relays are the relays this node keeps a reservation on.
	Relays []peer.AddrInfo
}

// Node is a running supervision tree.
type Node struct {
	system   *actor.ActorSystem
	root     *actor.PID
	registry *actor.PID
	devices  *actor.PID
	access   *actor.PID
	relays   *actor.PID
	runtimes map[string]*actor.PID
	// admission is the registry's snapshot access streams are admitted
	// from (actors/admission.go).
	admission *admissionBoard
}

// rootSupervisor is the top of the tree. It starts the runtime actors and
// the service registry and restarts whichever of them fails.
type rootSupervisor struct {
	cfg      NodeConfig
	ready    chan<- *Node
	runtimes map[string]*actor.PID
	// admission outlives a restart of the tree: the node reads it.
	admission *admissionBoard
}

func (s *rootSupervisor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		s.spawnChildren(ctx)
	}
}

func (s *rootSupervisor) spawnChildren(ctx actor.Context) {
	s.runtimes = map[string]*actor.PID{}
	for _, p := range s.cfg.Providers {
		pid, err := ctx.SpawnNamed(runtimeProps(p), "runtime-"+p.Runtime())
		if err != nil {
			panic(err)
		}
		s.runtimes[p.Runtime()] = pid
	}
	registry, err := ctx.SpawnNamed(registryProps(s.cfg.Home, s.runtimes, s.cfg.AllowedMounts, s.cfg.Events, s.admission), "services")
	if err != nil {
		panic(err)
	}
	devices, err := ctx.SpawnNamed(deviceBookProps(s.cfg.Home, s.cfg.Network, s.cfg.Relays), "devices")
	if err != nil {
		panic(err)
	}
	access, err := ctx.SpawnNamed(accessManagerProps(s.cfg.Home, s.cfg.DialAccess, s.cfg.Logger), "access")
	if err != nil {
		panic(err)
	}
	var relays *actor.PID
	// The keeper runs with no relays too: config.yaml's relays may be set
	// while the node runs (SetRelays).
	if s.cfg.Network != nil {
		if relays, err = ctx.SpawnNamed(relayKeeperProps(s.cfg.Relays, s.cfg.Network), "relays"); err != nil {
			panic(err)
		}
	}
	// Roaming: when this node's addresses change it takes its relay
	// reservations again and dials its devices that are not connected.
	if an, ok := s.cfg.Network.(interface{ OnAddrsChanged(func()) error }); ok {
		system := ctx.ActorSystem()
		err := an.OnAddrsChanged(func() {
			system.Root.Send(devices, &addrsChanged{})
			if relays != nil {
				system.Root.Send(relays, &addrsChanged{})
			}
		})
		if err != nil {
			ctx.Logger().Warn("address changes are not followed", "err", err)
		}
	}
	// Relayed connections are punched again while they stay relayed.
	if hp, ok := s.cfg.Network.(HolePuncher); ok {
		if _, err := ctx.SpawnNamed(punchKeeperProps(hp), "punch"); err != nil {
			panic(err)
		}
	}
	if s.ready != nil {
		s.ready <- &Node{system: ctx.ActorSystem(), root: ctx.Self(), registry: registry, devices: devices, access: access, relays: relays, runtimes: s.runtimes, admission: s.admission}
		s.ready = nil
	}
}

// StartNode builds the supervision tree and returns once it is up.
func StartNode(cfg NodeConfig) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logger := cfg.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	ready := make(chan *Node, 1)
	admission := &admissionBoard{}
	props := actor.PropsFromProducer(func() actor.Actor { return &rootSupervisor{cfg: cfg, ready: ready, admission: admission} }, supervision())
	if _, err := system.Root.SpawnNamed(props, "fungi"); err != nil {
		return nil, fmt.Errorf("start the actor system: %w", err)
	}
	select {
	case n := <-ready:
		return n, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("the actor system did not start within 10s")
	}
}

// PeerDisconnected tells the node the last connection to p closed, so its
// session dials again.
func (n *Node) PeerDisconnected(p peer.ID) {
	n.system.Root.Send(n.devices, &peerDisconnected{id: p})
	if n.relays != nil {
		n.system.Root.Send(n.relays, &peerDisconnected{id: p})
	}
}

// PeerFoundOnLAN reports a peer mDNS saw.
func (n *Node) PeerFoundOnLAN(info peer.AddrInfo) {
	n.system.Root.Send(n.devices, &mdnsFound{info: info})
}

// RuntimeNames lists the runtime providers of the node.
func (n *Node) RuntimeNames() []string {
	var out []string
	for name := range n.runtimes {
		out = append(out, name)
	}
	return out
}

// ask sends msg to pid and waits for its answer. An answer that is an
// *Error is returned as the error.
func (n *Node) ask(pid *actor.PID, msg any, timeout time.Duration) (any, error) {
	res, err := n.system.Root.RequestFuture(pid, msg, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("the node did not answer within %s: %w", timeout, err)
	}
	if e, ok := res.(*Error); ok {
		return nil, e
	}
	return res, nil
}

// PullService registers a service from a manifest; progress is called from
// another goroutine with each step of the fetch.
func (n *Node) PullService(req *messages.PullServiceRequest, progress func(*messages.PullProgress), timeout time.Duration) (*messages.ServiceInfo, error) {
	return askAs[*messages.ServiceInfo](n, n.registry, &pullService{req: req, progress: progress}, timeout)
}

// Stop stops every actor, and with them every running service, leaving the
// desired states on disk for the next start.
func (n *Node) Stop() {
	n.system.Root.StopFuture(n.root).Wait()
	n.system.Shutdown()
}
