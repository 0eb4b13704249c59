// Package daemontest runs a real daemon inside a test's process: its own
// home, real libp2p host, real API socket, and an API client to it. It is
// the one place tests start a daemon without the fungi binary; tests of the
// binary itself start it with os/exec (cmd/fungi).
//
// It lives beside internal/daemon rather than in internal/testutil because
// it imports the daemon, and the daemon's own tests import testutil.
package daemontest

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fungi-go/fungi/internal/daemon"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// QuietConfig is the config of a daemon in a test: no mDNS multicast, no
// UPnP/NAT-PMP requests to the gateway and no public DHT, so nothing leaves
// the machine; and no dashboard, whose port is fixed by default.
const QuietConfig = "mdns: false\nportMapping: false\ndiscovery: {dht: false}\nui:\n  enabled: false\n"

// DashboardConfig is QuietConfig with the dashboard and the names port on,
// each on a free loopback port, for tests of the web UI.
const DashboardConfig = "mdns: false\nportMapping: false\ndiscovery: {dht: false}\nui:\n  enabled: true\n  listen: 127.0.0.1:0\nnames:\n  enabled: true\n  listen: 127.0.0.1:0\n"

// NewHome is a fresh home in a temporary folder with config as its
// config.yaml; nothing else is created (the daemon creates the identity
// when it starts, or the test calls Init to know it first).
func NewHome(tb testing.TB, config string) *home.Home {
	tb.Helper()
	h, err := home.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(h.ConfigPath(), []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	return h
}

// Options says how Start runs a daemon. The zero value is a quiet node on a
// fresh home, listening on a free loopback TCP port, its log discarded.
type Options struct {
	// Home is the node's folder, its config.yaml written (see NewHome);
	// nil means NewHome(tb, QuietConfig).
	Home *home.Home
	// Listen is the one multiaddr the node listens on; empty means
	// /ip4/127.0.0.1/tcp/0.
	Listen string
	// Log receives the daemon's log; nil discards it.
	Log io.Writer
}

// Node is a daemon running in the test's process until the test ends.
type Node struct {
	Home *home.Home
	// API is a client of the node's API socket, as the CLI has.
	API messages.DaemonClient
	// Info is the node's answer to Info once its API was up.
	Info *messages.NodeInfo
}

// Start runs daemon.Run in a goroutine, waits until the node answers on its
// API socket, and stops it (waiting for Run to return) when the test ends.
func Start(tb testing.TB, o Options) *Node {
	tb.Helper()
	if o.Home == nil {
		o.Home = NewHome(tb, QuietConfig)
	}
	if o.Listen == "" {
		o.Listen = "/ip4/127.0.0.1/tcp/0"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	h := o.Home
	// A test's daemon shares the machine's network: one that multicasts,
	// asks the gateway for a port or joins the public DHT reaches beyond it.
	if cfg, err := h.LoadConfig(); err != nil {
		tb.Fatal(err)
	} else if cfg.MDNS || cfg.PortMapping || cfg.Discovery.DHT {
		tb.Fatalf("%s: a test daemon needs mdns, portMapping and discovery.dht off (see QuietConfig)", h.ConfigPath())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Home: h, Listen: []string{o.Listen}, Log: o.Log})
	}()
	tb.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient("unix://"+h.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	n := &Node{Home: h, API: messages.NewDaemonClient(conn)}
	testutil.WaitFor(tb, 30*time.Second, "the daemon's API", func() error {
		probe, err := net.Dial("unix", h.SocketPath())
		if err != nil {
			return err
		}
		probe.Close() // left open, it holds the API server's stop for two minutes
		n.Info, err = n.API.Info(context.Background(), &messages.InfoRequest{})
		return err
	})
	return n
}
