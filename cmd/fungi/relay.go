package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/maxprocs"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/discovery"
)

// relayCmd runs a relay server (the default, as before) or edits the
// relays this node keeps a reservation on.
type relayCmd struct {
	Serve  relayServeCmd  `cmd:"" default:"withargs" help:"Run a circuit-relay server for nodes behind NAT (the default)."`
	Add    relayAddCmd    `cmd:"" help:"Keep a reservation on a relay (config.yaml relays; applied at once)."`
	Remove relayRemoveCmd `cmd:"" aliases:"rm" help:"Stop using a relay."`
	List   relayListCmd   `cmd:"" aliases:"ls" help:"List the relays in config.yaml."`
}

// relayServeCmd runs a circuit-relay server for nodes behind NAT, with the
// identity of its own home (-f).
type relayServeCmd struct {
	Listen    []string `name:"listen" placeholder:"MULTIADDR" help:"Where to listen (repeatable; default config relay.listen, port 4001)."`
	Allow     []string `name:"allow" placeholder:"PEER_ID" help:"A peer to serve, besides config relay.allow (repeatable)."`
	Open      bool     `name:"open" help:"Serve any peer, not only the allowed ones (the default when the DHT is on and no peer is allowed)."`
	Bootstrap []string `name:"bootstrap" placeholder:"MULTIADDR" help:"A DHT node to start from, ending /p2p/<peer id> (repeatable; replaces config.yaml's bootstrap and turns the DHT on)."`
}

func (c *relayServeCmd) Run(e *env) error {
	keepMonitorAwake(e)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go maxprocs.Run(ctx)
	if _, err := e.home.Init(); err != nil {
		return err
	}
	cfg, err := e.home.LoadConfig()
	if err != nil {
		return err
	}
	priv, _, err := e.home.Identity()
	if err != nil {
		return err
	}
	rc := transport.RelayConfig{
		Open:            c.Open,
		MaxReservations: cfg.Relay.MaxReservations,
		MaxCircuits:     cfg.Relay.MaxCircuits,
		ReservationTTL:  cfg.Relay.ReservationTTL,
		CircuitDuration: cfg.Relay.CircuitDuration,
		CircuitBytes:    cfg.Relay.CircuitBytes,
	}
	for _, a := range append(append([]string{}, cfg.Relay.Allow...), c.Allow...) {
		id, err := peer.Decode(a)
		if err != nil {
			return fmt.Errorf("allow %q: not a peer ID", a)
		}
		rc.Allow = append(rc.Allow, id)
	}
	listen := cfg.Relay.Listen
	if len(c.Listen) > 0 {
		listen = c.Listen
	}
	dhtOn, bootstrap, err := discovery.Settings(cfg.Discovery.DHT, cfg.Bootstrap, c.Bootstrap)
	if err != nil {
		return err
	}
	// A relay in the DHT with no list of its own is infrastructure: the
	// nodes that find it there are strangers to it, served within its
	// limits. A list, or the DHT off, keeps it to the peers listed.
	openByDefault := dhtOn && len(rc.Allow) == 0 && !rc.Open
	if openByDefault {
		rc.Open = true
	}
	h, err := transport.NewRelay(priv, listen, rc)
	if err != nil {
		return err
	}
	defer h.Close()
	// The infrastructure node serves the DHT: others' lookups end here.
	if dhtOn {
		kad, err := discovery.Start(h, discovery.Config{Server: true, Bootstrap: bootstrap})
		if err != nil {
			return err
		}
		defer kad.Close()
		fmt.Fprintf(e.stderr, "fungi relay: serving the DHT, %d bootstrap peers\n", len(bootstrap))
	}
	for _, a := range transport.Addrs(h) {
		fmt.Fprintln(e.stdout, a)
	}
	who := fmt.Sprintf("%d allowed peers", len(rc.Allow))
	switch {
	case openByDefault:
		who = "any peer (a public relay: the DHT is on and relay.allow is empty; list peers there or with --allow to serve only them)"
	case rc.Open:
		who = "any peer (--open)"
	}
	fmt.Fprintf(e.stderr, "fungi relay: serving %s; nodes add one of the addresses above to config.yaml relays (or daemon --relay)\n", who)
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "fungi relay: stopping")
	return nil
}
