package transport

import (
	"net/netip"
	"time"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
)

// perAddrConns is how many connections may be open at once to or from one
// address (libp2p's default is 8). Relayed connections carry the relay's
// address: at 8, a node could hold only seven devices through one relay,
// and a device that reconnected while its old connection was still being
// torn down counted twice.
const perAddrConns = 64

// connLimits are the resource manager's options for connections per
// address: how many at once, how fast new ones open.
func connLimits() []rcmgr.Option {
	return []rcmgr.Option{
		// Its Prometheus series go to libp2p's default registry, which
		// fungi never serves (the dashboard's /metrics has a registry of
		// its own); updating them cost 5–7 % of a daemon's CPU per new
		// access connection in the two-daemon benchmark.
		rcmgr.WithMetricsDisabled(),
		rcmgr.WithConnRateLimiters(connRateLimiter()),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: perAddrConns}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: perAddrConns}}),
	}
}

// connRateLimiter bounds how fast new connections open per address, as
// libp2p's own limiter does, but with room for what a home node sees:
// every peer it reaches through a relay, and every peer that reaches it
// through one, shares the relay's address, and they all reconnect at once
// after a network change. libp2p's default (16 at once, then one every 5 s
// per IPv4 address) refused the third pairing or the eighth move in a row
// through one relay. Strangers are still refused at the handshake (the
// trust gate); this only bounds what the handshakes cost.
func connRateLimiter() *rate.Limiter {
	perAddr := rate.Limit{RPS: 2, Burst: 128}
	return &rate.Limiter{
		// Loopback is never limited, as in libp2p's default.
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Limit: rate.Limit{}},
			{Prefix: netip.MustParsePrefix("::1/128"), Limit: rate.Limit{}},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: perAddr}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: perAddr},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 5, Burst: 512}},
			},
			GracePeriod: time.Minute,
		},
	}
}
