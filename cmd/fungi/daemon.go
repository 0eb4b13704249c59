package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/fungi-go/fungi/internal/daemon"
	"github.com/fungi-go/fungi/internal/logging"
)

// daemonCmd runs the node (`fungi daemon`, the default) and manages it: its
// log, and installing it as a system service.
type daemonCmd struct {
	Run  daemonRunCmd  `cmd:"" default:"withargs" hidden:"" help:"Run the node in the foreground."`
	Logs daemonLogsCmd `cmd:"" help:"Show the daemon's own log (HOME/logs/daemon.log); works without a running daemon."`
}

type daemonRunCmd struct {
	Listen   []string `name:"listen" placeholder:"MULTIADDR" help:"Where to accept peers, e.g. /ip4/0.0.0.0/tcp/4433 (repeatable; default from config.yaml)."`
	Relay    []string `name:"relay" placeholder:"MULTIADDR" help:"A relay to keep a reservation on, ending /p2p/<relay id> (repeatable; added to config.yaml's relays)."`
	LogLevel string   `name:"log-level" placeholder:"LEVEL" help:"debug, info, warn or error (default: config.yaml log.level, else info)."`
}

func (c *daemonRunCmd) Run(e *env) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return daemon.Run(ctx, daemon.Options{Home: e.home, Listen: c.Listen, Relays: c.Relay, Log: e.stderr, LogLevel: c.LogLevel})
}

type daemonLogsCmd struct {
	Follow bool `name:"follow" help:"(-f) Keep printing lines as the daemon writes them, until interrupted."`
	Tail   int  `name:"tail" default:"-1" placeholder:"N" help:"Only the last N lines (default: the whole file)."`
}

// Run reads the log file itself rather than asking the daemon, so the log
// of a daemon that failed to start or died can still be read.
func (c *daemonLogsCmd) Run(e *env) error {
	path := logging.Path(e.home.Dir)
	end, err := logging.Tail(path, c.Tail, e.stdout)
	if err != nil {
		return err
	}
	if !c.Follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return logging.Follow(ctx, path, end, e.stdout)
}
