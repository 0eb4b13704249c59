// Package access is fungi's access protocol, which carries a local
// connection to a service another node publishes: a header naming the
// service and its port, the peer's answer, then the bytes both ways
// (Pipe), with early data and streams opened ahead of use (Dialer) to
// spare round trips, and the glue to fungi's go-yamux fork that delivers
// bytes from the muxer's receive loop straight to the socket
// (deliver.go). transport imports it and wires it to the node's host
// (Wire); it imports none of transport.
package access

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fungi-go/fungi/internal/gopool"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/wire"
)

// accessHeaderTimeout bounds the exchange before the bytes flow: the header
// in, the service resolved and dialled, the answer out.
const accessHeaderTimeout = 30 * time.Second

// Resolver turns an access header from a peer into the local address
// of the service, or refuses it with a reason the peer is shown.
type Resolver func(from peer.ID, hdr *messages.AccessHeader) (addr string, err error)

// Gate is the trust gate that says what a peer may use on this node
// (transport.TrustGate).
type Gate interface {
	// Role is p's role, or "" when p may use nothing on this node.
	Role(p peer.ID) string
}

// Serve registers the access protocols on h: a header naming service
// and port, a reply, then the bytes both ways, raw on a stream of one
// connection (wire.AccessProtocol), in chunks on a stream that carries
// one connection after another (wire.AccessReuseProtocol).
func Serve(h host.Host, gate Gate, resolve Resolver, logf func(string, ...any)) {
	srv := &server{gate: gate, resolve: resolve, logf: logf}
	h.SetStreamHandler(wire.AccessProtocol, func(s network.Stream) { srv.serve(s, false) })
	h.SetStreamHandler(wire.AccessReuseProtocol, func(s network.Stream) { srv.serve(s, true) })
}

// server is the serving side of the access protocols.
type server struct {
	gate    Gate
	resolve Resolver
	logf    func(string, ...any)
}

func (srv *server) serve(s network.Stream, reuse bool) {
	if srv.gate.Role(s.Conn().RemotePeer()) == "" {
		s.Reset()
		return
	}
	bs := &bufferedStream{Stream: s, r: bufio.NewReader(s)}
	if reuse {
		bs.chunks = newChunkConn(s, bs.r, true)
	}
	for first := true; srv.serveOne(bs, first); first = false {
	}
}

// serveOne serves the connection whose header comes next on bs and
// reports whether bs may carry another.
func (srv *server) serveOne(s *bufferedStream, first bool) bool {
	from := s.Conn().RemotePeer()
	s.SetDeadline(time.Now().Add(accessHeaderTimeout))
	var hdr messages.AccessHeader
	if err := wire.ReadFrame(s.frames(), &hdr, wire.MaxAccessFrame); err != nil {
		if !first && errors.Is(err, io.EOF) {
			// The opener closed a stream between connections.
			s.Stream.Close()
			return false
		}
		wire.WriteFrame(s.Stream, &messages.AccessReply{Error: "bad access header: " + err.Error()})
		s.Stream.Close()
		return false
	}
	// The role is checked again now that the stream is used: a stream
	// may be opened well before its header (Dialer's warm ones, a reused
	// one), and trust may have been withdrawn since.
	if srv.gate.Role(from) == "" {
		s.Stream.Reset()
		return false
	}
	addr, err := srv.resolve(from, &hdr)
	if err != nil {
		srv.logf("access from %s to %s refused: %v", from, hdr.ServiceId, err)
		wire.WriteFrame(s.Stream, &messages.AccessReply{Error: err.Error()})
		s.Stream.Close()
		return false
	}
	conn, err := dialService(addr)
	if err != nil {
		srv.logf("access from %s: %s does not answer on %s: %v", from, hdr.ServiceId, addr, err)
		wire.WriteFrame(s.Stream, &messages.AccessReply{Error: fmt.Sprintf("%s is published but does not answer on its port: %v", hdr.ServiceId, err)})
		s.Stream.Close()
		return false
	}
	s.SetDeadline(time.Time{})
	reusable := false
	if s.chunks != nil {
		s.conn = s.chunks.begin(func(ok bool) { reusable = ok })
	}
	// The OK goes out with the service's first bytes (a banner, the
	// echo of early data), in one frame, not in a frame of its own:
	// the opener wakes once for both. Nothing waits for it alone: the
	// opener's upload does not, and its download has nothing to read
	// before the service speaks.
	(&pipe{a: conn.(*net.TCPConn), b: s, reply: admittedReply, replyWait: replyWait}).run(nil)
	return reusable
}

// admittedReply is the frame of the reply that admits a connection.
var admittedReply, _ = wire.AppendFrame(nil, &messages.AccessReply{Ok: true})

// replyWait is how long the reply that admits a connection waits for the
// service's first bytes before it goes alone: what the opener waits for
// it then is its warm streams' refill (Dialer).
const replyWait = 2 * time.Millisecond

// Open opens an access stream to p for one connection and returns it
// once the peer accepted; a refusal comes back as its reason. With a
// context from WithEarlyData it returns as soon as the header is written:
// the caller's first bytes then travel right behind it instead of a round
// trip later, and the reply is read by the first Read (see Stream).
// The peer still checks the role and admits the service before any of
// those bytes reach the service: until then they wait in the stream's
// receive window.
func Open(ctx context.Context, h host.Host, p peer.ID, hdr *messages.AccessHeader) (HalfCloser, error) {
	s, err := openStream(ctx, h, p, wire.AccessProtocol)
	if err != nil {
		return nil, err
	}
	return OpenOn(ctx, s, hdr)
}

// openStream opens a stream to p for a connection, of the first of
// protos that p offers.
func openStream(ctx context.Context, h host.Host, p peer.ID, protos ...protocol.ID) (network.Stream, error) {
	s, err := newUserStream(ctx, h, p, "fungi access", protos...)
	if err != nil {
		// A stream that would not open on a connection we hold says the
		// path may be dead: each is pinged (none when the dial failed).
		for _, c := range h.Network().ConnsToPeer(p) {
			suspectConn(c)
		}
		return nil, wire.StreamOpenError(err)
	}
	return s, nil
}

// OpenOn is Open on a stream already open.
func OpenOn(ctx context.Context, s network.Stream, hdr *messages.AccessHeader) (HalfCloser, error) {
	return openOn(ctx, &bufferedStream{Stream: s, r: bufio.NewReader(s)}, hdr)
}

// openOn sends hdr on s for a new connection; on a reusable stream the
// client's first bytes behind it go as a chunk.
func openOn(ctx context.Context, s *bufferedStream, hdr *messages.AccessHeader) (HalfCloser, error) {
	deadline, _ := ctx.Deadline()
	if !deadline.IsZero() {
		s.SetWriteDeadline(deadline)
	}
	frame, err := wire.AppendFrame(nil, hdr)
	if err == nil {
		first, _ := ctx.Value(firstBytesKey{}).([]byte)
		if s.chunks != nil && len(first) > 0 {
			frame = binary.BigEndian.AppendUint32(frame, uint32(len(first)))
		}
		_, err = s.Stream.Write(append(frame, first...))
	}
	if err != nil {
		s.Reset()
		suspectConn(s.Conn())
		return nil, fmt.Errorf("the peer did not accept the connection: %w", wire.ExplainReset(err))
	}
	s.SetWriteDeadline(time.Time{})
	a := &Stream{bufferedStream: *s, replyDeadline: deadline}
	if early, _ := ctx.Value(earlyDataKey{}).(bool); early {
		return a, nil
	}
	if err := a.Accepted(); err != nil {
		return nil, err
	}
	return &a.bufferedStream, nil
}

type earlyDataKey struct{}

// WithEarlyData marks ctx so Open does not wait for the peer's reply
// before returning the stream: a new connection's first request then costs
// one round trip, not two. The caller must be ready for the refusal to
// surface later, from Stream.Accepted or its first Read; PipeStream
// turns it into the same answer an immediate refusal gets.
func WithEarlyData(ctx context.Context) context.Context {
	return context.WithValue(ctx, earlyDataKey{}, true)
}

type firstBytesKey struct{}

// WithFirstBytes has Open send b, the client's first bytes (ReadReady),
// right behind the header in the same write: one frame and one wake-up
// of the peer fewer than sending them after it. Use it only WithEarlyData:
// the bytes go out before the peer admitted the service, as early data
// does. A failed Open has sent them nowhere.
func WithFirstBytes(ctx context.Context, b []byte) context.Context {
	return context.WithValue(ctx, firstBytesKey{}, b)
}

// Stream is an access stream whose header is sent and whose reply
// may still be on its way: writes go out at once, the first Read waits for
// the reply and fails with the refusal if the peer refused.
type Stream struct {
	bufferedStream
	replyDeadline time.Time
	once          sync.Once
	refusal       error
	// admitted, when set, is called once by whoever reads the peer's
	// reply, if it admitted the stream (Dialer refills its warm
	// streams then, without a goroutine of its own waiting for the reply).
	// It must not block.
	admitted func()
}

// Accepted waits for the peer's reply and returns why it refused, or nil
// once the service is admitted and dialled.
func (a *Stream) Accepted() error {
	a.once.Do(func() {
		a.refusal = a.readReply()
		if a.refusal == nil && a.admitted != nil {
			a.admitted()
		}
	})
	return a.refusal
}

func (a *Stream) readReply() error {
	if !a.replyDeadline.IsZero() {
		a.SetReadDeadline(a.replyDeadline)
	}
	var reply messages.AccessReply
	if err := wire.ReadFrame(a.frames(), &reply, wire.MaxAccessFrame); err != nil {
		a.bufferedStream.Reset()
		suspectConn(a.Conn())
		return fmt.Errorf("the peer did not accept the connection: %w", wire.ExplainReset(err))
	}
	a.SetReadDeadline(time.Time{})
	if !reply.Ok {
		// A reset, not a close: with early data an upload may be blocked
		// on a window the peer will never open again.
		a.bufferedStream.Reset()
		return &wire.RemoteError{Code: "denied", Message: reply.Error}
	}
	return nil
}

// Read waits for the peer's reply, then reads what the service sent.
func (a *Stream) Read(p []byte) (int, error) {
	if err := a.Accepted(); err != nil {
		return 0, err
	}
	return a.bufferedStream.Read(p)
}

// WriteTo waits for the reply, then drains like bufferedStream.
func (a *Stream) WriteTo(w io.Writer) (int64, error) {
	if err := a.Accepted(); err != nil {
		return 0, err
	}
	return a.bufferedStream.WriteTo(w)
}

// HalfCloser is a connection that can end its writing side alone.
type HalfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// bufferedStream reads through the bufio.Reader that read the header, so no
// byte the peer sent right behind it is lost. On a reusable stream
// (chunks set) it is one connection's view of the stream: its bytes
// travel in chunks, its half-close is the end marker, and its close hands
// the stream on when the connection ended cleanly.
type bufferedStream struct {
	network.Stream
	r      *bufio.Reader
	chunks *chunkConn
	conn   uint64 // which of chunks' connections this is
}

// stale reports whether b is a reusable stream's view of a connection
// that has left it: it must not touch the stream's next connections.
func (b *bufferedStream) stale() bool { return b.chunks != nil && !b.chunks.current(b.conn) }

func (b *bufferedStream) Read(p []byte) (int, error) {
	if b.chunks != nil {
		if b.stale() {
			return 0, net.ErrClosed
		}
		return b.chunks.read(p)
	}
	return b.r.Read(p)
}

// WriteTo lets io.Copy drain the buffer and then the stream with one
// buffer of its own size.
func (b *bufferedStream) WriteTo(w io.Writer) (int64, error) {
	if b.chunks != nil {
		return io.Copy(w, struct{ io.Reader }{b})
	}
	return b.r.WriteTo(w)
}

func (b *bufferedStream) Write(p []byte) (int, error) {
	if b.chunks != nil {
		if b.stale() {
			return 0, net.ErrClosed
		}
		return b.chunks.write(p)
	}
	return b.Stream.Write(p)
}

func (b *bufferedStream) CloseWrite() error {
	if b.chunks != nil {
		if b.stale() {
			return net.ErrClosed
		}
		return b.chunks.closeWrite()
	}
	return b.Stream.CloseWrite()
}

func (b *bufferedStream) Close() error {
	if b.chunks != nil {
		if b.stale() {
			return nil
		}
		return b.chunks.close()
	}
	return b.Stream.Close()
}

func (b *bufferedStream) Reset() error {
	if b.chunks != nil {
		if b.stale() {
			return nil
		}
		return b.chunks.reset()
	}
	return b.Stream.Reset()
}

// frames is where the stream's header and reply frames are read.
func (b *bufferedStream) frames() wire.FrameReader {
	if b.chunks != nil {
		return &b.chunks.raw
	}
	return b.r
}

// chunked is the stream's framing, nil on a stream of one connection.
func (b *bufferedStream) chunked() *chunkConn { return b.chunks }

// chunksOf is the chunk framing under an end of a bridge (a
// bufferedStream, or a Stream around one), nil for any other end.
func chunksOf(end any) *chunkConn {
	if c, ok := end.(interface{ chunked() *chunkConn }); ok {
		return c.chunked()
	}
	return nil
}

// pipeBuffers are the bridges' copy buffers. 128 KiB: a read from the
// client becomes one yamux frame (eight TLS records), and on a bulk
// transfer the receiving daemon spent less CPU per byte than with 256 KiB
// frames, whose bytes are colder in the cache by the time they are
// written to the service (deliverMax in deliver.go).
var pipeBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// How long a bridged connection may make no progress before Pipe tears it
// down. A write that moves nothing for pipeWriteStall means the receiver
// stopped reading while its side is still open. (The write deadline moves
// only once half of it has passed, so a stalled write ends after between
// half and all of it: a deadline per write cost a timer each, on a yamux
// stream a new one.) Once one direction ended,
// the other must move a byte every pipeHalfIdle: a service that answered
// and stopped reading an upload it does not want, or a client that left
// half-way, would otherwise hold both ends forever. Variables so tests can
// shorten them.
var (
	pipeWriteStall = 2 * time.Minute
	pipeHalfIdle   = 2 * time.Minute
)

type deadlines interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

type resetter interface{ Reset() error }

// pipe is one bridged connection: two ends, two copying directions.
type pipe struct {
	a, b  HalfCloser
	count func(aToB bool, n int) // nil: nobody counts
	// reply goes to b in front of a's first bytes, or alone when a
	// sends none within replyWait.
	reply     []byte
	replyWait time.Duration
	refusal   error // the peer refused a Stream end: no bytes flowed back
	mu        sync.Mutex
	ended     int  // directions that ended, cleanly or not
	failed    bool // an error ended a direction: reset rather than close
	tornDown  bool
	halfDone  atomic.Bool
}

// Pipe copies both ways until both sides finished. When one side ends its
// writing, the other's writing side is closed too (half-close), so request
// bodies that end with EOF work. It never blocks forever: every write has a
// deadline, once one direction ended the other must keep moving, and when
// an end breaks (a reset, a failed read) both are torn down at once, a
// stream with a reset so the peer's side of the bridge ends too.
func Pipe(a, b HalfCloser) { (&pipe{a: a, b: b}).run(nil) }

// PipeStream is Pipe for a local connection and an access stream opened
// WithEarlyData: the connection's bytes go out while the peer decides, and
// if it refuses, the upload stops and refused writes the connection its
// answer (the connection is closed after it returns). counted, when not
// nil, is told of every write: sent for bytes towards the peer.
func PipeStream(conn *net.TCPConn, s *Stream, refused func(error), counted func(sent bool, n int)) {
	(&pipe{a: conn, b: s, count: counted}).run(refused)
}

func (p *pipe) run(refused func(error)) {
	// One direction on a goroutine of its own, the other on the caller's,
	// whose stack has already grown: a bridge costs one goroutine start
	// fewer on the way to its first byte.
	done := make(chan struct{})
	gopool.Go(func() { defer close(done); p.copyHalf(p.a, p.b) })
	p.copyHalf(p.b, p.a)
	<-done
	p.mu.Lock()
	failed, refusal, tornDown := p.failed, p.refusal, p.tornDown
	p.mu.Unlock()
	if refusal != nil && refused != nil && !tornDown {
		if d, ok := p.a.(deadlines); ok {
			d.SetReadDeadline(time.Time{})
		}
		refused(refusal)
	}
	p.teardown(failed)
}

// teardown closes both ends once; a failed bridge resets its streams.
func (p *pipe) teardown(failed bool) {
	p.mu.Lock()
	if p.tornDown {
		p.mu.Unlock()
		return
	}
	p.tornDown = true
	p.mu.Unlock()
	for _, c := range []HalfCloser{p.a, p.b} {
		if r, ok := c.(resetter); ok && failed {
			r.Reset()
			continue
		}
		c.Close()
	}
}

// copyHalf copies src to dst and reports how it ended.
func (p *pipe) copyHalf(dst, src HalfCloser) {
	if as, ok := src.(*Stream); ok {
		if err := as.Accepted(); err != nil {
			p.mu.Lock()
			p.refusal, p.failed = err, true
			p.ended++
			p.mu.Unlock()
			// Stop the upload; the refusal's answer goes to dst once
			// nothing else reads it.
			if d, ok := dst.(deadlines); ok {
				d.SetReadDeadline(time.Unix(1, 0))
			}
			return
		}
	}
	if conn, ok := dst.(net.Conn); ok {
		// Bytes delivered by the receive loop skip copyBytes: they are
		// counted here, and only while no read deadline must be renewed.
		allowed := func() bool { return !p.halfDone.Load() }
		wrote := func(n int) {
			if p.count != nil {
				p.count(src == p.a, n)
			}
		}
		if stop := deliverTo(conn, src, allowed, wrote); stop != nil {
			defer stop()
		}
	}
	buf := pipeBuffers.Get().(*[]byte)
	defer pipeBuffers.Put(buf)
	readBroken, err := p.copyBytes(dst, src, *buf)
	if chunks := chunksOf(src); chunks != nil && err == nil {
		chunks.inputDone()
	}
	p.mu.Lock()
	p.ended++
	if err != nil {
		p.failed = true
	}
	last := p.ended == 2
	refused := p.refusal != nil
	p.mu.Unlock()
	switch {
	case last, refused:
	case readBroken:
		// src broke both ways (reset, refused): nothing more can be
		// delivered to it or read from it.
		p.teardown(true)
	default:
		// The other direction reads from dst: it may still carry an
		// answer, but it must keep moving now.
		p.halfDone.Store(true)
		if d, ok := dst.(deadlines); ok {
			d.SetReadDeadline(time.Now().Add(pipeHalfIdle))
		}
	}
}

// copyBytes is io.Copy with a deadline on every write, and on every read
// once the other direction ended. readBroken tells a failed read of src
// from a failed write to dst. To a reusable stream each read goes out as
// one chunk, its header written in front of the data in buf.
func (p *pipe) copyBytes(dst, src HalfCloser, buf []byte) (readBroken bool, err error) {
	srcD, _ := src.(deadlines)
	dstD, _ := dst.(deadlines)
	chunks := chunksOf(dst)
	room := 0 // for the chunk header
	if chunks != nil {
		room = chunkHeaderLen
	}
	var reply []byte         // still to go out in front of src's first bytes
	var writeUntil time.Time // dst's write deadline as last set
	if src == p.a && srcD != nil {
		reply = p.reply
	}
	for {
		half := p.halfDone.Load()
		switch {
		case reply != nil:
			srcD.SetReadDeadline(time.Now().Add(p.replyWait))
		case half && srcD != nil:
			srcD.SetReadDeadline(time.Now().Add(pipeHalfIdle))
		}
		// buf: the reply (if it still goes), the chunk header (on a
		// reusable stream), then what src gives.
		at := len(reply) + room
		n, rerr := src.Read(buf[at:])
		out := buf[at : at+n]
		if n > 0 && room > 0 {
			putChunkHeader(buf[len(reply):at], n)
			out = buf[len(reply) : at+n]
		}
		if reply != nil {
			// The reply goes now: with these bytes, alone when none came
			// in time, and before the end or a failure, which the peer
			// must not take for a refusal.
			copy(buf, reply)
			out = buf[:len(reply)+len(out)]
			reply = nil
			if !half {
				srcD.SetReadDeadline(time.Time{})
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				rerr = nil
			}
		}
		if len(out) > 0 {
			if dstD != nil {
				stall := pipeWriteStall
				if p.halfDone.Load() {
					stall = min(stall, pipeHalfIdle)
				}
				now := time.Now()
				if left := writeUntil.Sub(now); left < stall/2 || left > stall {
					writeUntil = now.Add(stall)
					dstD.SetWriteDeadline(writeUntil)
				}
			}
			var werr error
			if chunks != nil {
				werr = chunks.writeFramed(out)
			} else {
				_, werr = dst.Write(out)
			}
			if werr != nil {
				return false, werr
			}
			if p.count != nil && n > 0 {
				p.count(src == p.a, n)
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return false, dst.CloseWrite()
			}
			return true, rerr
		}
	}
}
