package transport

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Roaming. libp2p learns of a new interface address only when its cache of
// them expires (a minute), and a TCP connection whose address went away
// stays open, silent, until its keepalive gives up (tens of seconds): a
// laptop that changed networks would wait that long before its access ports
// work again. The node watches the interfaces itself, drops the connections
// the change left dead at once, and then lets the actors dial and reserve
// again.

const (
	// netSettle is how long the watcher waits for a burst of interface
	// events to end (an interface going away takes its addresses and
	// routes with it, one message each) before it acts on them.
	netSettle = 200 * time.Millisecond
	// netSettleMax bounds that wait when events keep coming.
	netSettleMax = 2 * time.Second
	// aliveTimeout is how long a connection has, after an interface
	// change, to answer a ping before it is taken for dead and closed.
	aliveTimeout = 3 * time.Second
	// aliveParallel bounds the pings in flight after a change.
	aliveParallel = 16
)

// netChange is what changed on this machine's interfaces: the addresses
// that went away (an address removed and put back, as DHCP does, counts:
// the connections it carried are gone with its old network).
type netChange struct {
	lost map[string]bool
}

// WatchInterfaces calls changed (on a goroutine of its own) after this
// machine's interface addresses or default route change, once the
// connections the change left dead are closed and libp2p's dial backoff
// is cleared, so what changed calls then (dials, reservations) goes out on
// the new network at once. One watch runs per Network, whoever asks; stop
// ends this caller's calls.
func (n *Network) WatchInterfaces(changed func()) (stop func(), err error) {
	v, _ := watches.LoadOrStore(n, &ifaceWatch{subs: map[int]func(){}})
	w := v.(*ifaceWatch)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		events, _, err := watchNet()
		if err != nil {
			return nil, err
		}
		w.started = true
		go func() {
			for ch := range events {
				n.dropDeadConns(ch.lost)
				n.clearBackoff()
				w.mu.Lock()
				subs := make([]func(), 0, len(w.subs))
				for _, f := range w.subs {
					subs = append(subs, f)
				}
				w.mu.Unlock()
				for _, f := range subs {
					f()
				}
			}
		}()
	}
	id := w.next
	w.next++
	w.subs[id] = changed
	return func() {
		w.mu.Lock()
		delete(w.subs, id)
		w.mu.Unlock()
	}, nil
}

// watches holds the one interface watch of each Network. The watch lives
// as long as the process: a node has one Network, tests a few.
var watches sync.Map

type ifaceWatch struct {
	mu      sync.Mutex
	started bool
	subs    map[int]func()
	next    int
}

// clearBackoff forgets every failed dial: one that failed on the old
// network (or halfway through the change) says nothing of the new one,
// and libp2p would refuse to dial that address again for seconds.
func (n *Network) clearBackoff() {
	s, ok := n.Host.Network().(interface{ Backoff() *swarm.DialBackoff })
	if !ok {
		return
	}
	for _, p := range n.Host.Peerstore().Peers() {
		s.Backoff().Clear(p)
	}
}

// dropDeadConns closes, at once, the connections whose local address went
// away (and, when one did, those of unknown local address), and then every other connection that does not answer a ping over
// itself within aliveTimeout: one that kept its address may still have
// lost its path (a NAT mapping on the old network, an address behind a
// wildcard socket). Each connection is probed on its own, so a dead direct
// connection goes and the relayed one beside it, which new streams take
// then, stays.
func (n *Network) dropDeadConns(lost map[string]bool) {
	nw := n.Host.Network()
	var probe []network.Conn
	for _, c := range nw.Conns() {
		if manet.IsIPLoopback(c.RemoteMultiaddr()) {
			continue
		}
		ip := connIP(c.LocalMultiaddr())
		if (ip != "" && lost[ip]) || (ip == "" && len(lost) > 0) {
			// Gone with its address; or, on a wildcard socket (QUIC), one
			// whose interface is unknown, when an address went away: QUIC
			// may carry it to the new path, but both ends would still know
			// it by the old public address (identify told this node that
			// one, and hole punching needs the new one), so it is dialed
			// again. Relayed connections riding it go too and are dialed
			// again at once.
			c.Close()
			continue
		}
		probe = append(probe, c)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, aliveParallel)
	for _, c := range probe {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), aliveTimeout)
			defer cancel()
			if err := probeConn(ctx, c); err != nil && !errors.Is(err, errNotProbed) && !c.IsClosed() {
				c.Close()
			}
		}()
	}
	wg.Wait()
}

// connIP is the IP address in a, or "" when a has none or the unspecified
// one (a QUIC connection on the wildcard listener).
func connIP(a ma.Multiaddr) string {
	ip, err := manet.ToIP(a)
	if err != nil || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

// usableIP reports whether an address of this machine can carry a
// connection to another one: not loopback, not link-local.
func usableIP(ip net.IP) bool {
	return ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast()
}

// interfaceIPs is the set of usable addresses on this machine's interfaces.
func interfaceIPs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && usableIP(ipn.IP) {
			out[ipn.IP.String()] = true
		}
	}
	return out
}

// settle collects the changes arriving on in until they pause for
// netSettle (or netSettleMax has passed) and sends them as one on out;
// before, it diffs the interface addresses, so an address gone between two
// reads is lost even if no event named it.
func settle(in <-chan map[string]bool, out chan<- netChange, done <-chan struct{}) {
	defer close(out)
	prev := interfaceIPs()
	for {
		var lost map[string]bool
		select {
		case l, ok := <-in:
			if !ok {
				return
			}
			lost = map[string]bool{}
			for ip := range l {
				lost[ip] = true
			}
		case <-done:
			return
		}
		quiet := time.NewTimer(netSettle)
		limit := time.NewTimer(netSettleMax)
	collect:
		for {
			select {
			case l, ok := <-in:
				if !ok {
					break collect
				}
				for ip := range l {
					lost[ip] = true
				}
				quiet.Reset(netSettle)
			case <-quiet.C:
				break collect
			case <-limit.C:
				break collect
			case <-done:
				quiet.Stop()
				limit.Stop()
				return
			}
		}
		quiet.Stop()
		limit.Stop()
		cur := interfaceIPs()
		for ip := range prev {
			if !cur[ip] {
				lost[ip] = true
			}
		}
		prev = cur
		select {
		case out <- netChange{lost: lost}:
		case <-done:
			return
		}
	}
}

// OnConnected calls f (on a goroutine of its own) whenever a connection to
// a peer opens, a hole-punched one included; stop ends the calls.
func (n *Network) OnConnected(f func(peer.ID)) (stop func()) {
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { go f(c.RemotePeer()) }}
	n.Host.Network().Notify(nb)
	return func() { n.Host.Network().StopNotify(nb) }
}
