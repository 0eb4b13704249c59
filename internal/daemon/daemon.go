// Package daemon runs a node: it takes the home's lock, starts the actor
// tree, the peer host and the CLI API on the home's Unix socket, and stops
// them in order on a signal.
package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/internal/apisock"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/docker"
	"github.com/fungi-go/fungi/runtimes/external"
	"github.com/fungi-go/fungi/runtimes/wasm"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/discovery"
)

// Options configure Run.
type Options struct {
	Home *home.Home
	// Listen overrides the config's listen addresses when not empty.
	Listen []string
	// Relays are added to the config's relays.
	Relays []string
	// Bootstrap replaces the config's bootstrap list when not empty, and
	// turns the DHT on.
	Bootstrap []string
	// Log receives one line per notable event.
	Log io.Writer
	// LogLevel overrides config.yaml's log.level when not empty.
	LogLevel string
}

// Run runs the node until ctx is done.
func Run(ctx context.Context, opts Options) error {
	// `fungi daemon stop` (the Shutdown call) ends the run as a signal does.
	ctx, requestStop := context.WithCancel(ctx)
	defer requestStop()
	h := opts.Home
	// Until the home's log file is open (it needs the lock and the config),
	// lines go to stderr only.
	logger := slog.New(slog.NewTextHandler(opts.Log, nil))
	logf := func(format string, args ...any) { logger.Info(fmt.Sprintf(format, args...)) }
	defer startCPUProfile(logf)()
	if _, err := h.Init(); err != nil {
		return err
	}
	unlock, err := lockHome(h)
	if err != nil {
		return err
	}
	defer unlock()
	// SIGHUP reloads config.yaml; it never stops the node. Taken this early
	// so a SIGHUP during start-up does not kill the daemon either.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// With the lock held this daemon is the only writer: any temporary file
	// left in the home is from a node that died mid-write. A file that
	// cannot be removed is reported and left; it is never read as data.
	if err := removeStaleTemps(h); err != nil {
		logf("%v", err)
	}
	cfg, err := h.LoadConfig()
	if err != nil {
		return err
	}
	logger, closeLog, err := openLog(h, cfg, opts)
	if err != nil {
		return err
	}
	defer closeLog()
	priv, id, err := h.Identity()
	if err != nil {
		return err
	}
	if err := actors.CheckAccessBook(h); err != nil {
		return err
	}
	if err := actors.CheckDeviceBook(h); err != nil {
		return err
	}
	listen := cfg.Listen
	if len(opts.Listen) > 0 {
		listen = opts.Listen
	}
	relayInfos, err := parseRelays(append(append([]string{}, cfg.Relays...), opts.Relays...))
	if err != nil {
		return err
	}
	gate := transport.NewTrustGate()
	// The relays are let through before the host starts: the relay keeper
	// may ask for its first reservation before the device book has set the
	// gate, and a refusal then costs the node its relayed address for a
	// retry's wait.
	relayDial := map[peer.ID]bool{}
	for _, r := range relayInfos {
		relayDial[r.ID] = true
	}
	dhtOn, bootstrap, err := discovery.Settings(cfg.Discovery.DHT, cfg.Bootstrap, opts.Bootstrap)
	if err != nil {
		return err
	}
	for _, b := range bootstrap {
		relayDial[b.ID] = true
	}
	if dhtOn {
		// DHT lookups walk strangers' DHT servers, and relays are found
		// among them: outbound only, bounded (transport/routingpeers.go).
		gate.AllowRouting()
	}
	gate.Set(map[peer.ID]string{}, relayDial)
	relays := transport.NewRelays()
	if err := claimPorts(listen); err != nil {
		return err
	}
	peerHost, err := transport.NewHost(priv, listen, gate, relays, cfg.PortMapping)
	if err != nil {
		return fmt.Errorf("%w (another program may hold the port; pass --listen with another address)", err)
	}
	defer peerHost.Close()
	if err := checkListening(listen, peerHost.Network().ListenAddresses()); err != nil {
		return err
	}

	wasmCfg := wasm.DefaultConfig(h.CacheDir("wasm"))
	wasmCfg.MemoryLimitMB = cfg.Wasm.MemoryLimitMB
	wasmCfg.RequestTimeout = cfg.Wasm.RequestTimeout
	wasmCfg.MaxConcurrency = cfg.Wasm.MaxConcurrency
	wasmProvider := wasm.New(wasmCfg)
	defer wasmProvider.Close(context.Background())

	net := &transport.Network{Host: peerHost, Gate: gate, Relays: relays}
	if dhtOn {
		kad, err := discovery.Start(peerHost, discovery.Config{Bootstrap: bootstrap})
		if err != nil {
			return err
		}
		defer kad.Close()
		net.Routing = kad
	}
	if err := net.WatchReachability(); err != nil {
		return err
	}
	stopOwnRelay, err := transport.RelayForTrusted(peerHost, gate, logf)
	if err != nil {
		return err
	}
	defer stopOwnRelay()
	externalProvider := external.New(external.Config{AllowedHosts: cfg.External.AllowedHosts})
	// Access streams keep a few warm streams per peer they reached.
	accessDialer := access.NewDialer(peerHost)
	defer accessDialer.Close()
	node, err := actors.StartNode(actors.NodeConfig{
		Home: h,
		Providers: []runtimes.Provider{wasmProvider, docker.New(docker.Config{
			Node:          id.String(),
			DataRoot:      filepath.Join(h.Dir, "data"),
			AllowedMounts: cfg.Mounts.Allowed,
		}), externalProvider},
		AllowedMounts: cfg.Mounts.Allowed,
		Logger:        slog.New(atLeast{logger.Handler(), slog.LevelWarn}),
		Events:        logger,
		Network:       net,
		DialAccess:    accessDialer.Open,
		Relays:        relayInfos,
	})
	if err != nil {
		return err
	}
	defer node.Stop()
	net.OnDisconnect(node.PeerDisconnected)
	reload := &reloader{home: h, started: cfg, applied: cfg, flags: opts.Relays, node: node, net: net, external: externalProvider, logf: logf}
	reload.setMDNS(cfg.MDNS)
	defer reload.close()

	ln, err := apisock.Listen(apisock.Address(h.Dir))
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(512<<20), grpc.MaxSendMsgSize(64<<20),
		grpc.ChainUnaryInterceptor(recoverUnary(logf)), grpc.ChainStreamInterceptor(recoverStream(logf)))
	dashboard := &dashboardState{warn: logger}
	namesPort := &dashboardState{warn: logger}
	api := &apiServer{home: h, node: node, net: net, reloader: reload, external: externalProvider, requestStop: requestStop, opts: opts, dashboard: dashboard, names: namesPort, info: func() *messages.NodeInfo {
		info := &messages.NodeInfo{PeerId: id.String(), Addrs: transport.Addrs(peerHost), Reachability: net.Reachability()}
		for relay, res := range relays.Reservations() {
			r := &messages.RelayReservation{RelayPeerId: relay.String(), Error: res.Error}
			if !res.Expires.IsZero() {
				r.Expires = res.Expires.UTC().Format(time.RFC3339)
			}
			info.RelayReservations = append(info.RelayReservations, r)
		}
		return info
	}}
	api.overview = openDeviceOverview(h, logger)
	messages.RegisterDaemonServer(srv, api)
	transport.ServeControl(peerHost, gate, logControl(logger, node, api.handleControl))
	defer logEvents(logger, peerHost, relays, func(p peer.ID) string { return aliasOf(node, p) })()
	access.Serve(peerHost, gate, api.resolveAccess, logf)
	// The dashboard comes up before the API answers: whoever saw the API
	// answer (a script, `fungi ui` right after the daemon started) finds
	// the dashboard too. Its client dials the API's socket lazily.
	defer startUI(ctx, h, cfg, logf, dashboard)()
	defer startNames(ctx, h, cfg, logf, api, namesPort)()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logf("peer %s", id)
	logf("mDNS %s, port mapping %s (config.yaml keys mdns, portMapping)", onOff(cfg.MDNS), onOff(cfg.PortMapping))
	logf("DHT %s, %d bootstrap peers (config.yaml keys discovery.dht, bootstrap)", onOff(dhtOn), len(bootstrap))
	for _, a := range transport.Addrs(peerHost) {
		logf("listening on %s", a)
	}
	logf("ready; API on %s", apisock.Address(h.Dir))

	for stopped := false; !stopped; {
		select {
		case <-hup:
			if _, err := reload.reload(); err != nil {
				logf("SIGHUP: config.yaml not applied, the node keeps its settings: %v", err)
			}
		case <-ctx.Done():
			logf("stopping")
			stopped = true
		case err := <-served:
			return fmt.Errorf("the API server stopped: %w", err)
		}
	}
	stopGRPC(srv, 3*time.Second)
	apisock.Remove(apisock.Address(h.Dir))
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// stopGRPC lets calls in flight finish for a while; streams that never end
// on their own (logs -f) are cut after that.
func stopGRPC(srv *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		srv.Stop()
	}
}

// A bug in one API call must not take the node down with every service on
// it: the call fails, the daemon keeps serving, and the log says where.
func recoverUnary(logf func(string, ...any)) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logf("internal error in %s: %v\n%s", info.FullMethod, r, debug.Stack())
				err = status.Errorf(codes.Internal, "internal error in the daemon (%v); see the daemon's log", r)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logf func(string, ...any)) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logf("internal error in %s: %v\n%s", info.FullMethod, r, debug.Stack())
				err = status.Errorf(codes.Internal, "internal error in the daemon (%v); see the daemon's log", r)
			}
		}()
		return handler(srv, ss)
	}
}

// parseRelays reads relay addresses; each must name the relay's peer ID.
func parseRelays(addrs []string) ([]peer.AddrInfo, error) {
	byID := map[peer.ID]*peer.AddrInfo{}
	var order []peer.ID
	for _, a := range addrs {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("relay %q: %v (a relay address ends with /p2p/<relay peer ID>, as `fungi relay` prints it)", a, err)
		}
		if prev, ok := byID[info.ID]; ok {
			prev.Addrs = append(prev.Addrs, info.Addrs...)
			continue
		}
		byID[info.ID] = info
		order = append(order, info.ID)
	}
	out := make([]peer.AddrInfo, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}
