package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/fungi-go/fungi/messages"
)

// rttTimeout bounds the one ping per peer `connection list` measures: a
// peer that does not answer in time keeps the last figure libp2p knew.
const rttTimeout = 2 * time.Second

// freshRTT measures each listed peer's round trip now, one ping each, all
// at once: libp2p's running average is updated only when something pings,
// so it was stale (tens of ms on loopback) and empty for inbound peers.
func (s *apiServer) freshRTT(ctx context.Context, conns []*messages.ConnectionInfo) {
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "fungi connection list"), rttTimeout)
	defer cancel()
	measured := map[string]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range conns {
		if _, seen := measured[c.PeerId]; seen {
			continue
		}
		measured[c.PeerId] = -1
		id, err := peer.Decode(c.PeerId)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func(key string) {
			defer wg.Done()
			pctx, stop := context.WithCancel(ctx)
			defer stop()
			r := <-ping.Ping(pctx, s.net.Host, id)
			if r.Error == nil {
				mu.Lock()
				measured[key] = float64(r.RTT) / float64(time.Millisecond)
				mu.Unlock()
			}
		}(c.PeerId)
	}
	wg.Wait()
	for _, c := range conns {
		if rtt := measured[c.PeerId]; rtt >= 0 {
			c.RttMs = rtt
		}
	}
}
