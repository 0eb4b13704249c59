package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"
)

// Dead direct paths. A direct connection whose path died (the peer moved
// to another network, its NAT forgot the mapping) says nothing: QUIC keeps
// it until its idle timeout (30 s) and libp2p keeps giving it every new
// stream, because it prefers a direct connection to a relayed one. A node
// that moved closes its own at once (see dropDeadConns); the node that
// stayed sees nothing. So while a peer has a relayed connection beside a
// direct one (the relay a punch turned direct, or the peer back through a
// relay after a move), or two direct ones (the peer punched again from its
// new address), the direct ones are pinged on their own path every
// pathProbeEvery, and at once when a connection opens beside another;
// one that does not answer within pathProbeTimeout is closed, so new
// streams take the relayed connection at once, and it is punched again.
// A peer whose connections are all direct costs nothing.
const (
	pathProbeEvery   = time.Second
	pathProbeTimeout = 1500 * time.Millisecond
	// pathProbeParallel bounds the probes in flight.
	pathProbeParallel = 16
	// staleDirectAge is how old a direct connection must be for an
	// incoming hole punch to count as proof that it is dead: younger ones
	// may be a concurrent punch's own result.
	staleDirectAge = 2 * punchDialTimeout
)

// errNotProbed is a probe that could not start (a stream limit of this
// node): it says nothing of the path.
var errNotProbed = errors.New("the path probe could not open a stream")

// probeConn pings the peer over c itself (not over whichever connection
// libp2p would pick), with ctx's deadline. An error other than
// errNotProbed means the path did not answer. A peer that refuses the
// ping (its resource manager allows a few ping streams per peer, and a
// stream whose reset was lost on a dead path holds one until its own
// timeout) answered all the same: the path is alive.
func probeConn(ctx context.Context, c network.Conn) error {
	err := pingOverConn(ctx, c)
	if err != nil && remoteAnswered(err) {
		return nil
	}
	return err
}

// remoteAnswered says whether err is the peer's own word (it reset or
// closed the stream, or declined the protocol) rather than silence.
func remoteAnswered(err error) bool {
	var se *network.StreamError
	if errors.As(err, &se) {
		return se.Remote
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, msmux.ErrNotSupported[protocol.ID]{})
}

func pingOverConn(ctx context.Context, c network.Conn) error {
	s, err := c.NewStream(network.WithAllowLimitedConn(ctx, "fungi path probe"))
	if err != nil {
		if c.IsClosed() {
			return err
		}
		return fmt.Errorf("%w: %v", errNotProbed, err)
	}
	defer s.Reset()
	if err := s.SetProtocol(ping.ID); err != nil {
		return fmt.Errorf("%w: %v", errNotProbed, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	lazy := msmux.NewMSSelect(s, ping.ID)
	out := make([]byte, ping.PingSize)
	rand.Read(out)
	if _, err := lazy.Write(out); err != nil {
		return err
	}
	in := make([]byte, ping.PingSize)
	if _, err := io.ReadFull(lazy, in); err != nil {
		return err
	}
	if !bytes.Equal(in, out) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// pathWatch probes the direct connections of peers that also have a
// relayed one and closes those that do not answer.
type pathWatch struct {
	h       host.Host
	repunch func(peer.ID)
	kick    chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	inFlight map[network.Conn]bool
}

// watchPaths starts a path watch on h; repunch is called for a peer once
// a dead direct connection to it was closed. Stop it with stop.
func watchPaths(h host.Host, repunch func(peer.ID)) (stop func()) {
	w := &pathWatch{h: h, repunch: repunch, kick: make(chan struct{}, 1), done: make(chan struct{}), inFlight: map[network.Conn]bool{}}
	nb := &network.NotifyBundle{ConnectedF: func(nw network.Network, c network.Conn) {
		if len(nw.ConnsToPeer(c.RemotePeer())) > 1 {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
	}}
	h.Network().Notify(nb)
	pathWatches.Store(w, struct{}{})
	go w.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			pathWatches.Delete(w)
			h.Network().StopNotify(nb)
			close(w.done)
		})
	}
}

func (w *pathWatch) run() {
	t := time.NewTicker(pathProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		case <-w.kick:
		}
		w.sweep()
	}
}

// suspectConns are the connections to peers that hold more than one: the
// peer came back by another path, after a move or a punch from its new
// address, and libp2p may still give new streams the old one. A relayed
// connection is one too: when the peer moves, the relay keeps this side
// of the old circuit until its own connection to the peer times out
// (half a minute and more), and streams opened on it are reset.
func suspectConns(nw network.Network) []network.Conn {
	var out []network.Conn
	for _, p := range nw.Peers() {
		if conns := nw.ConnsToPeer(p); len(conns) > 1 {
			out = append(out, conns...)
		}
	}
	return out
}

// sweep starts a probe on each suspect connection that has none running;
// it does not wait for them, so one slow probe does not hold the others.
func (w *pathWatch) sweep() {
	for _, c := range suspectConns(w.h.Network()) {
		w.probe(c)
	}
}

// probe pings c on its own path unless a probe of it is running or too
// many are, and closes it if the path does not answer: new streams then
// take another connection, and a dead direct one is punched again.
func (w *pathWatch) probe(c network.Conn) {
	w.mu.Lock()
	if w.inFlight[c] || len(w.inFlight) >= pathProbeParallel {
		w.mu.Unlock()
		return
	}
	w.inFlight[c] = true
	w.mu.Unlock()
	go func() {
		defer func() {
			w.mu.Lock()
			delete(w.inFlight, c)
			w.mu.Unlock()
		}()
		// A relayed path is two hops, each as loaded as the other.
		timeout := pathProbeTimeout
		if relayedConn(c) {
			timeout *= 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := probeConn(ctx, c)
		cancel()
		if err == nil || errors.Is(err, errNotProbed) || c.IsClosed() {
			return
		}
		c.Close()
		if w.repunch != nil && !relayedConn(c) {
			w.repunch(c.RemotePeer())
		}
	}()
}

// pathWatches are the running path watches, for suspectConn: one per
// host, a few in a process that runs several (tests).
var pathWatches sync.Map // *pathWatch → struct{}

// suspectConn asks the path watch of the host that holds c to ping c now,
// as after a network change: an access stream on it failed short of the
// peer's answer (a reset, a timeout), which is how a dead path shows on
// a connection that is the only one to its peer. A live path costs one
// ping; a dead one is closed, so the next attempt dials afresh.
func suspectConn(c network.Conn) {
	if c == nil || c.IsClosed() {
		return
	}
	pathWatches.Range(func(k, _ any) bool {
		w := k.(*pathWatch)
		if slices.Contains(w.h.Network().ConnsToPeer(c.RemotePeer()), c) {
			w.probe(c)
			return false
		}
		return true
	})
}

// closeStaleDirect closes the direct connections to id older than
// staleDirectAge. Called as a hole punch from id starts: the peer punches
// only when it has no direct connection to this node, so one this node
// still holds is dead (the peer moved, or closed it as its address went
// away, and the close never arrived), and while it is open libp2p's punch
// would take it for success and dial nothing.
func closeStaleDirect(h host.Host, id peer.ID) {
	for _, c := range h.Network().ConnsToPeer(id) {
		if !relayedConn(c) && time.Since(c.Stat().Opened) > staleDirectAge {
			c.Close()
		}
	}
}
