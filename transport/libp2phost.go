package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	quicgo "github.com/quic-go/quic-go"
	"golang.org/x/crypto/hkdf"

	"github.com/fungi-go/fungi/transport/recordbatch"
)

// The host is assembled here from go-libp2p's parts instead of by
// libp2p.New: the root package links every default transport (WebRTC,
// WebTransport, WebSocket, HTTP/3) through its DefaultTransports variable,
// and its config package links WebRTC and an fx/dig/zap dependency
// injector, a third of the release binary for transports fungi never
// listens on nor dials. The steps follow go-libp2p v0.51's
// config.NewNode for the options fungi used, in the same order.

// nodeConfig is what a node host is made of.
type nodeConfig struct {
	priv   crypto.PrivKey
	listen []string
	gater  connmgr.ConnectionGater // may be nil
	rm     network.ResourceManager // taken over: closed with the host
	// relayClient dials and accepts through circuit-relay v2 relays.
	relayClient bool
	// natService answers other peers' AutoNAT dial-back requests.
	natService   bool
	portMapping  bool
	addrsFactory bhost.AddrsFactory // may be nil
}

// nodeHost is the basic host with the parts libp2p.New's dependency
// injector used to stop for it. Embedding *bhost.BasicHost keeps its
// IDService and AllAddrs reachable, which hole punching needs.
type nodeHost struct {
	*bhost.BasicHost
	closers []func() error // in order
}

func (h *nodeHost) Close() error {
	for _, c := range h.closers {
		_ = c()
	}
	return h.BasicHost.Close()
}

// ourMuxers is yamux with fungi's settings, the only muxer.
func ourMuxers() []tptu.StreamMuxer {
	return []tptu.StreamMuxer{{ID: yamux.ID, Muxer: muxer()}}
}

// transports are an upgrader, TCP and QUIC for one identity; close the
// QUIC connection manager after the swarm that uses them.
type transports struct {
	upgrader transport.Upgrader
	quicCM   *quicreuse.ConnManager
	list     []transport.Transport
}

func newTransports(priv crypto.PrivKey, gater connmgr.ConnectionGater, rm network.ResourceManager) (*transports, error) {
	muxers := ourMuxers()
	// TLS 1.3 first: its AES-GCM runs on the CPU's AES instructions,
	// several times faster than Noise's ChaCha20 in Go. Noise stays for
	// peers that prefer it.
	tlsT, err := libp2ptls.New(libp2ptls.ID, priv, muxers)
	if err != nil {
		return nil, err
	}
	noiseT, err := noise.New(noise.ID, priv, muxers)
	if err != nil {
		return nil, err
	}
	// TLS's records of one write leave in one syscall, not one each.
	up, err := tptu.New([]sec.SecureTransport{recordbatch.New(tlsT), noiseT}, muxers, nil, rm, gater)
	if err != nil {
		return nil, err
	}
	resetKey, err := quicKey(priv, "libp2p quic stateless reset key")
	if err != nil {
		return nil, err
	}
	tokenKey, err := quicKey(priv, "libp2p quic token generator key")
	if err != nil {
		return nil, err
	}
	cm, err := quicreuse.NewConnManager(quicgo.StatelessResetKey(resetKey), quicgo.TokenGeneratorKey(tokenKey),
		// An inbound QUIC connection is counted by the resource manager
		// before its handshake, as TCP's are by the upgrader.
		quicreuse.ConnContext(func(ctx context.Context, ci *quicgo.ClientInfo) (context.Context, error) {
			addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quicgo.Version1)
			if err != nil {
				addr = nil
			}
			scope, err := rm.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(rm.VerifySourceAddress))
	if err != nil {
		return nil, err
	}
	tcpT, err := tcp.NewTCPTransport(up, rm, nil)
	if err != nil {
		cm.Close()
		return nil, err
	}
	quicT, err := quic.NewTransport(priv, cm, nil, gater, rm)
	if err != nil {
		cm.Close()
		return nil, err
	}
	return &transports{upgrader: up, quicCM: cm, list: []transport.Transport{tcpT, quicT}}, nil
}

// quicKey derives one of QUIC's server keys from the node's key, so that
// they survive a restart, as libp2p derives them.
func quicKey(priv crypto.PrivKey, info string) ([32]byte, error) {
	var key [32]byte
	raw, err := priv.Raw()
	if err != nil {
		return key, err
	}
	_, err = io.ReadFull(hkdf.New(sha256.New, raw, nil, []byte(info)), key[:])
	return key, err
}

// newSwarm is a swarm for priv on its own peerstore, with the transports.
func newSwarm(priv crypto.PrivKey, bus event.Bus, t *transports, opts ...swarm.Option) (*swarm.Swarm, error) {
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, err
	}
	if err := ps.AddPrivKey(id, priv); err != nil {
		ps.Close()
		return nil, err
	}
	if err := ps.AddPubKey(id, priv.GetPublic()); err != nil {
		ps.Close()
		return nil, err
	}
	sw, err := swarm.NewSwarm(id, ps, bus, opts...)
	if err != nil {
		ps.Close()
		return nil, err
	}
	for _, tp := range t.list {
		if err := sw.AddTransport(tp); err != nil {
			sw.Close()
			ps.Close()
			return nil, err
		}
	}
	return sw, nil
}

// newNode starts a host as libp2p.New did with fungi's options, metrics
// off. On failure cfg.rm is closed.
func newNode(cfg nodeConfig) (_ *nodeHost, err error) {
	var undo []func() error
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				_ = undo[i]()
			}
			cfg.rm.Close()
		}
	}()
	listen := make([]ma.Multiaddr, 0, len(cfg.listen))
	for _, s := range cfg.listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, err
		}
		listen = append(listen, a)
	}
	tps, err := newTransports(cfg.priv, cfg.gater, cfg.rm)
	if err != nil {
		return nil, err
	}
	undo = append(undo, tps.quicCM.Close)
	bus := eventbus.NewBus()
	opts := []swarm.Option{
		// A black hole is all or nothing on a network: 5 successes in 100
		// dials tell a working one (libp2p's defaults).
		swarm.WithUDPBlackHoleSuccessCounter(&swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"}),
		swarm.WithIPv6BlackHoleSuccessCounter(&swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"}),
		swarm.WithResourceManager(cfg.rm),
		// TCP+TLS before QUIC on direct paths: it won every access figure
		// (docs/ACCESS-LATENCY.md); hole punches ignore the ranker.
		swarm.WithDialRanker(dialRanker()),
	}
	if cfg.gater != nil {
		opts = append(opts, swarm.WithConnectionGater(cfg.gater))
	}
	sw, err := newSwarm(cfg.priv, bus, tps, opts...)
	if err != nil {
		return nil, err
	}
	undo = append(undo, sw.Peerstore().Close, sw.Close)
	obs, err := observedaddrs.NewManager(bus, sw)
	if err != nil {
		return nil, err
	}
	cm, err := basicconnmgr.NewConnManager(160, 192)
	if err != nil {
		return nil, err
	}
	undo = append(undo, cm.Close)
	hopts := &bhost.HostOpts{
		EventBus:             bus,
		ConnManager:          cm,
		AddrsFactory:         cfg.addrsFactory,
		EnablePing:           true,
		ObservedAddrsManager: obs,
	}
	if cfg.portMapping {
		hopts.NATManager = bhost.NewNATManager
	}
	h, err := bhost.NewHost(sw, hopts)
	if err != nil {
		return nil, err
	}
	// From here the host owns the swarm, peerstore, connection manager
	// and resource manager.
	undo = []func() error{tps.quicCM.Close, h.Close}
	if cfg.relayClient {
		if err := circuit.AddTransport(h, tps.upgrader); err != nil {
			return nil, err
		}
	}
	if err := sw.Listen(listen...); err != nil {
		return nil, err
	}
	obs.Start(sw)
	undo = append(undo, obs.Close)
	h.Start()
	if err := startAutoNAT(h, cfg); err != nil {
		return nil, err
	}
	return &nodeHost{BasicHost: h, closers: []func() error{obs.Close, sw.Close, tps.quicCM.Close}}, nil
}

// startAutoNAT asks other peers whether the host's public addresses are
// reachable and, with natService, answers them the same question from a
// swarm of its own.
func startAutoNAT(h *bhost.BasicHost, cfg nodeConfig) error {
	addrs := func() []ma.Multiaddr {
		all := h.AllAddrs()
		if cfg.addrsFactory != nil {
			all = slices.Clone(cfg.addrsFactory(all))
		}
		return slices.DeleteFunc(all, func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
	}
	opts := []autonat.Option{autonat.UsingAddresses(addrs)}
	var dialer *swarm.Swarm
	if cfg.natService {
		var err error
		if dialer, err = newDialBackSwarm(cfg); err != nil {
			return err
		}
		opts = append(opts, autonat.EnableService(dialer))
	}
	an, err := autonat.New(h, opts...)
	if err != nil {
		if dialer != nil {
			dialer.Close()
		}
		return fmt.Errorf("autonat init failed: %w", err)
	}
	h.SetAutoNat(an)
	return nil
}

// newDialBackSwarm is the AutoNAT service's dialer: a throwaway identity,
// no listeners, no dial delays. AutoNAT closes it with the host.
func newDialBackSwarm(cfg nodeConfig) (*swarm.Swarm, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	tps, err := newTransports(priv, cfg.gater, cfg.rm)
	if err != nil {
		return nil, err
	}
	opts := []swarm.Option{
		swarm.WithUDPBlackHoleSuccessCounter(nil),
		swarm.WithIPv6BlackHoleSuccessCounter(nil),
		swarm.WithDialRanker(swarm.NoDelayDialRanker),
		swarm.WithResourceManager(cfg.rm),
	}
	if cfg.gater != nil {
		opts = append(opts, swarm.WithConnectionGater(cfg.gater))
	}
	sw, err := newSwarm(priv, eventbus.NewBus(), tps, opts...)
	if err != nil {
		tps.quicCM.Close()
		return nil, err
	}
	go func() {
		<-sw.Done()
		tps.quicCM.Close()
		sw.Peerstore().Close()
	}()
	return sw, nil
}

// defaultResourceManager is libp2p's default resource manager, for a
// host whose peers are not sorted by the trust gate (the relay), with a
// home node's connection rate per address (connLimits): a household's
// devices reach a public relay from one address, and libp2p's default
// (16 at once, then one every 5 s) held a device that restarted or moved
// a few times in a row away from its slot for 12 s and more.
func defaultResourceManager() (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	setServiceLimits(&limits)
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), connLimits()...)
}

// pingStreamsPerPeer bounds a peer's ping streams each way.
const pingStreamsPerPeer = 8

// setServiceLimits adds libp2p's default limits for its own services
// (identify, ping, AutoNAT, hole punching, relay), as
// libp2p.SetDefaultServiceLimits does.
func setServiceLimits(c *rcmgr.ScalingLimitConfig) {
	c.AddServiceLimit(identify.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20})
	c.AddServicePeerLimit(identify.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 1 << 20},
		rcmgr.BaseLimitIncrease{})
	for _, id := range [...]protocol.ID{identify.ID, identify.IDPush} {
		c.AddProtocolLimit(id,
			rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20},
			rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20})
		c.AddProtocolPeerLimit(id,
			rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 32 * (256<<20 + 16<<10)},
			rcmgr.BaseLimitIncrease{})
	}
	both := func(service string, proto protocol.ID, l rcmgr.BaseLimit, inc rcmgr.BaseLimitIncrease, peerL rcmgr.BaseLimit) {
		c.AddServiceLimit(service, l, inc)
		c.AddProtocolLimit(proto, l, inc)
		c.AddServicePeerLimit(service, peerL, rcmgr.BaseLimitIncrease{})
		c.AddProtocolPeerLimit(proto, peerL, rcmgr.BaseLimitIncrease{})
	}
	// Ping per peer: libp2p allows 2 inbound, but fungi pings a peer on
	// every connection it holds (the path watch, each second while there
	// are two), from its session, from `connection list` and after a
	// failed access stream, and the peer does the same: a third ping was
	// refused, and the path watch read the refusal of its probe as a dead
	// path. A ping is 32 bytes each way.
	both(ping.ServiceName, ping.ID,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 64, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 64, Memory: 4 << 20},
		rcmgr.BaseLimit{StreamsInbound: pingStreamsPerPeer, StreamsOutbound: pingStreamsPerPeer, Streams: 2 * pingStreamsPerPeer, Memory: 32 * (256<<20 + 16<<10)})
	both(autonat.ServiceName, autonat.AutoNATProto,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 64, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 4, StreamsOutbound: 4, Streams: 4, Memory: 2 << 20},
		rcmgr.BaseLimit{StreamsInbound: 2, StreamsOutbound: 2, Streams: 2, Memory: 1 << 20})
	both(holepunch.ServiceName, holepunch.Protocol,
		rcmgr.BaseLimit{StreamsInbound: 32, StreamsOutbound: 32, Streams: 64, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 4 << 20},
		rcmgr.BaseLimit{StreamsInbound: 2, StreamsOutbound: 2, Streams: 2, Memory: 1 << 20})
	c.AddServiceLimit(relayv2.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 256, Memory: 16 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 256, StreamsOutbound: 256, Streams: 256, Memory: 16 << 20})
	c.AddServicePeerLimit(relayv2.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 64, Memory: 1 << 20},
		rcmgr.BaseLimitIncrease{})
	for _, id := range [...]protocol.ID{circuitproto.ProtoIDv2Hop, circuitproto.ProtoIDv2Stop} {
		c.AddProtocolLimit(id,
			rcmgr.BaseLimit{StreamsInbound: 640, StreamsOutbound: 640, Streams: 640, Memory: 16 << 20},
			rcmgr.BaseLimitIncrease{StreamsInbound: 640, StreamsOutbound: 640, Streams: 640, Memory: 16 << 20})
		c.AddProtocolPeerLimit(id,
			rcmgr.BaseLimit{StreamsInbound: 128, StreamsOutbound: 128, Streams: 128, Memory: 32 << 20},
			rcmgr.BaseLimitIncrease{})
	}
}
