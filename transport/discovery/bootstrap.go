package discovery

import (
	"fmt"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxBootstrapPeers bounds the bootstrap list: a DHT node needs a few to
// start from, and each is dialed and let through the trust gate.
const MaxBootstrapPeers = 64

// DefaultBootstrap is the public libp2p bootstrap list (the one Kubo
// ships), as multiaddrs ending /p2p/<peer ID>.
func DefaultBootstrap() []string {
	out := make([]string, 0, len(dht.DefaultBootstrapPeers))
	for _, a := range dht.DefaultBootstrapPeers {
		out = append(out, a.String())
	}
	return out
}

// ParseBootstrap reads bootstrap addresses, each ending /p2p/<peer ID>;
// addresses of one peer are merged into one entry.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %v (a bootstrap address ends with /p2p/<peer ID>, as `fungi relay serve` prints it)", a, err)
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		if len(out) == MaxBootstrapPeers {
			return nil, fmt.Errorf("bootstrap: more than %d peers; name a few DHT nodes, the DHT finds the rest", MaxBootstrapPeers)
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

// Settings says whether a node joins the DHT and from which peers, given
// config.yaml's discovery.dht (enabled) and bootstrap (configured) and the
// command line's --bootstrap (flags): flags replace the configured list
// and turn the DHT on, for tests and private deployments; otherwise the
// config decides, and a node with the DHT off reads no list at all.
func Settings(enabled bool, configured, flags []string) (on bool, bootstrap []peer.AddrInfo, err error) {
	if len(flags) > 0 {
		bootstrap, err = ParseBootstrap(flags)
		if err != nil {
			return false, nil, fmt.Errorf("--%v", err)
		}
		return true, bootstrap, nil
	}
	if !enabled {
		return false, nil, nil
	}
	bootstrap, err = ParseBootstrap(configured)
	if err != nil {
		return false, nil, fmt.Errorf("config.yaml %v; fix the list with `fungi config set bootstrap ...`", err)
	}
	return true, bootstrap, nil
}
