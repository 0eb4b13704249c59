package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/fungi-go/fungi/internal/daemon"
)

type daemonCmd struct {
	Listen []string `name:"listen" placeholder:"MULTIADDR" help:"Where to accept peers, e.g. /ip4/0.0.0.0/tcp/4433 (repeatable; default from config.yaml)."`
	Relay  []string `name:"relay" placeholder:"MULTIADDR" help:"A relay to keep a reservation on, ending /p2p/<relay id> (repeatable; added to config.yaml's relays)."`
}

func (c *daemonCmd) Run(e *env) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return daemon.Run(ctx, daemon.Options{Home: e.home, Listen: c.Listen, Relays: c.Relay, Log: e.stderr})
}
