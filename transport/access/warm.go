package access

import (
	"bufio"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/wire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	goyamux "github.com/libp2p/go-yamux/v5"
)

// Warm streams kept per peer, and how long one may wait for its use. A web
// page opens a handful of connections at once: two ready streams cover the
// first of them and the rest overlap their opens. The peer waits for a
// stream's header for accessHeaderTimeout (30 s) and then ends it; ten
// seconds stays well inside that and covers a page load's burst.
const (
	accessWarmStreams = 2
	accessWarmMaxAge  = 10 * time.Second
)

// Dialer opens access streams from one host, as Open does, and
// keeps a few streams to each peer it was used for opened ahead of use:
// open, the access protocol negotiated, the peer's handler waiting for a
// header. A new local connection then skips the stream open and the peer's
// accept chain.
//
// A warm stream carries no header, so the peer has checked nothing and
// dialled nothing for it: the role check, the service's admission and its
// dial happen when the header arrives, exactly as on a fresh stream, and a
// refusal comes back the same way. The service sees a connection only when
// a client makes one. Streams are warmed only for a peer that just admitted
// a connection (a peer nobody reaches holds nothing), each is dropped
// once older than the age bound, and one whose peer or connection ended,
// or that rides a relay while a direct connection exists, is never used.
type Dialer struct {
	h      host.Host
	maxAge time.Duration

	mu    sync.Mutex
	pools map[peer.ID]*warmPool // nil once closed
}

// NewDialer returns a dialer for h; Close it with the host.
func NewDialer(h host.Host) *Dialer {
	return &Dialer{h: h, maxAge: accessWarmMaxAge, pools: map[peer.ID]*warmPool{}}
}

// Open opens an access stream to p for one connection, as the function
// Open does (WithEarlyData included), on a warm stream when one is ready,
// and warms the next ones.
func (d *Dialer) Open(ctx context.Context, p peer.ID, hdr *messages.AccessHeader) (HalfCloser, error) {
	pool := d.pool(p)
	if pool == nil {
		return nil, errors.New("this node is shutting down")
	}
	stream, err := d.open(ctx, pool, p, hdr)
	if err != nil {
		// A peer that cannot be reached is not dialled again in the
		// background.
		return nil, err
	}
	// Warm the next ones once this one is admitted: a refused connection
	// warms nothing, and the new streams' frames do not travel alongside
	// this connection's first bytes. The bridge reads the reply anyway
	// (PipeStream, before its first byte back): the refill starts there,
	// not on a goroutine of its own blocked on the same reply.
	if as, ok := stream.(*Stream); ok {
		as.admitted = pool.refill
	} else {
		pool.refill()
	}
	return stream, nil
}

func (d *Dialer) open(ctx context.Context, pool *warmPool, p peer.ID, hdr *messages.AccessHeader) (HalfCloser, error) {
	if st := pool.take(); st != nil {
		return openOn(ctx, pool.lend(st), hdr)
	}
	s, err := openStream(ctx, d.h, p, reuseFirst...)
	if errors.Is(err, wire.ErrStreamLimit) {
		// A warm stream may have taken the last stream the limits allow
		// while this one was being opened: it is this connection's.
		if st := pool.take(); st != nil {
			return openOn(ctx, pool.lend(st), hdr)
		}
	}
	if err != nil {
		return nil, err
	}
	return openOn(ctx, pool.lend(&warmStream{s: s}), hdr)
}

// reuseFirst is the access protocols a Dialer opens, the reusable one
// first: libp2p takes the first the peer lists (identify tells, before
// the stream opens), with no round trip to choose.
var reuseFirst = []protocol.ID{wire.AccessReuseProtocol, wire.AccessProtocol}

// Close resets every warm stream and warms no more.
func (d *Dialer) Close() {
	d.mu.Lock()
	pools := d.pools
	d.pools = nil
	d.mu.Unlock()
	for _, pool := range pools {
		pool.close()
	}
}

func (d *Dialer) pool(p peer.ID) *warmPool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pools == nil {
		return nil
	}
	pool := d.pools[p]
	if pool == nil {
		pool = &warmPool{d: d, p: p}
		d.pools[p] = pool
	}
	return pool
}

// warm opens a stream to p and negotiates the access protocol on it, so
// the peer's handler is running and waiting for a header when it is used.
//
// On yamux the stream opens lazily (the fork's WithLazySYN; libp2p hands
// the context down to the muxer): its SYN rides on the protocol selection
// written below, and the peer's ACK on its reply, one frame each way
// instead of two, each a TLS record, a write and a wake-up of the other
// side. The write follows at once, so the stream's in-flight SYN slot is
// not held.
func (d *Dialer) warm(ctx context.Context, p peer.ID) (network.Stream, error) {
	s, err := newUserStream(goyamux.WithLazySYN(ctx), d.h, p, "fungi access", reuseFirst...)
	if err != nil {
		return nil, err
	}
	// An empty write sends the lazy protocol selection and nothing else.
	if _, err := s.Write(nil); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}

// usable reports whether a warm stream can still carry a connection: its
// connection is open, neither side ended the stream, and it does not ride a
// relay while the host has a direct connection to the peer (a stream
// opened now would take the direct one).
func (d *Dialer) usable(s network.Stream) bool {
	c := s.Conn()
	if c.IsClosed() {
		return false
	}
	if streamEnded(s) {
		return false
	}
	if wire.Relayed(c) {
		for _, other := range d.h.Network().ConnsToPeer(c.RemotePeer()) {
			if !other.IsClosed() && !wire.Relayed(other) {
				return false
			}
		}
	}
	return true
}

// warmPool is one peer's warm streams: opened ahead of use, and reusable
// ones back from a connection that ended cleanly.
type warmPool struct {
	d *Dialer
	p peer.ID

	mu      sync.Mutex
	ready   []*warmStream
	filling int
	warmed  int // streams warmed so far
	reused  int // connections that went on a stream back from another
	closed  bool
}

// PooledStreams bounds the reusable streams a Dialer keeps to a peer
// after a burst of connections; each still leaves after accessWarmMaxAge
// unused. The peer holds a goroutine for each, waiting for its next
// header.
const PooledStreams = 16

type warmStream struct {
	s      network.Stream
	back   *bufferedStream // the stream as its last connection left it; nil: never used
	expiry *time.Timer
}

// take returns a usable stream, the one last put back first (the others
// may then age out), or nil; the unusable ones it meets are reset.
func (w *warmPool) take() *warmStream {
	for {
		w.mu.Lock()
		if len(w.ready) == 0 {
			w.mu.Unlock()
			return nil
		}
		st := w.ready[len(w.ready)-1]
		w.ready = w.ready[:len(w.ready)-1]
		w.mu.Unlock()
		st.expiry.Stop()
		if w.d.usable(st.s) {
			return st
		}
		st.s.Reset()
	}
}

// lend readies st for a connection. A reusable stream comes back to the
// pool when the connection ends cleanly.
func (w *warmPool) lend(st *warmStream) *bufferedStream {
	bs := st.back
	if bs == nil {
		bs = &bufferedStream{Stream: st.s, r: bufio.NewReader(st.s)}
		if st.s.Protocol() == wire.AccessReuseProtocol {
			bs.chunks = newChunkConn(st.s, bs.r, false)
		}
	}
	if bs.chunks != nil {
		if st.back != nil {
			w.mu.Lock()
			w.reused++
			w.mu.Unlock()
		}
		bs.conn = bs.chunks.begin(func(reusable bool) { w.put(bs, reusable) })
	}
	return bs
}

// put takes back a reusable stream whose connection ended: clean, it waits
// for the next connection; otherwise it was reset.
func (w *warmPool) put(bs *bufferedStream, reusable bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !reusable {
		return
	}
	if w.closed || len(w.ready) >= PooledStreams {
		bs.Stream.Close()
		return
	}
	st := &warmStream{s: bs.Stream, back: bs}
	st.expiry = time.AfterFunc(w.d.maxAge, func() { w.expire(st) })
	w.ready = append(w.ready, st)
}

// refill starts warming streams until ready and warming ones make the
// pool's size. A reusable stream comes back after its connection, so a run
// of one connection after another warms none after the first: the pool
// holds the stream that came back.
func (w *warmPool) refill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.closed && len(w.ready)+w.filling < accessWarmStreams {
		w.filling++
		go w.fill()
	}
}

func (w *warmPool) fill() {
	ctx, cancel := context.WithTimeout(context.Background(), accessHeaderTimeout)
	s, err := w.d.warm(ctx, w.p)
	cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.filling--
	if err != nil {
		return
	}
	if w.closed {
		s.Reset()
		return
	}
	w.warmed++
	st := &warmStream{s: s}
	st.expiry = time.AfterFunc(w.d.maxAge, func() { w.expire(st) })
	w.ready = append(w.ready, st)
}

// expire drops st if no connection took it meanwhile; nothing replaces it.
func (w *warmPool) expire(st *warmStream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, r := range w.ready {
		if r == st {
			w.ready = append(w.ready[:i], w.ready[i+1:]...)
			st.s.Reset()
			return
		}
	}
}

func (w *warmPool) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, st := range w.ready {
		st.expiry.Stop()
		st.s.Reset()
	}
	w.ready = nil
}
