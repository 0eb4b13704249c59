package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/dialerr"
	"github.com/fungi-go/fungi/internal/gopool"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/wire"
)

// accessForwarder listens on an entry's local ports and bridges every
// accepted connection to a new access stream to the peer. Accepting and
// copying run in goroutines of their own; the actor owns the listeners and
// closes them, and every bridged connection, when it stops.
type accessForwarder struct {
	peer      peer.ID
	rec       *accessRecord
	listeners []net.Listener
	dial      AccessDialer
	logger    *slog.Logger
	cancel    context.CancelFunc

	// peerText is peer as text, for the access metrics: its base58 is
	// worked out once, not for every connection.
	peerOnce sync.Once
	peerText string
}

func (f *accessForwarder) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		f.start()
	case *actor.Stopping:
		f.stop()
	}
}

func (f *accessForwarder) start() {
	c, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i, ln := range f.listeners {
		hdr := &messages.AccessHeader{ServiceId: f.rec.ServiceID, Port: f.rec.Ports[i].Name}
		go f.acceptLoop(c, ln, hdr)
	}
}

func (f *accessForwarder) stop() {
	f.cancel()
	for _, ln := range f.listeners {
		ln.Close()
	}
}

// acceptLoop bridges every connection over its own stream: the dialer's
// warm streams (access.Dialer) spare it the stream open, and early
// data brings it to one round trip to the peer. The goroutine that
// accepted a connection bridges it, and another (from gopool, its stack
// grown by an earlier connection) accepts the next: the
// connection's first bytes go out without waiting for another goroutine
// to be scheduled, nor for the next accept's empty poll.
func (f *accessForwarder) acceptLoop(ctx context.Context, ln net.Listener, hdr *messages.AccessHeader) {
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		conn, err := ln.Accept()
		if err == nil {
			gopool.Go(func() { f.acceptLoop(ctx, ln, hdr) })
			f.bridge(ctx, conn.(*net.TCPConn), hdr)
			return
		}
		if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return
		}
		// Out of file descriptors, most likely: the entry stays, and
		// accepts again once connections ended, as net/http's server does.
		f.logger.Warn("access entry cannot accept", "service", f.rec.ServiceID, "err", err, "retry in", pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return
		}
	}
}

// peerString is the peer's ID as text.
func (f *accessForwarder) peerString() string {
	f.peerOnce.Do(func() { f.peerText = f.peer.String() })
	return f.peerText
}

func (f *accessForwarder) bridge(ctx context.Context, conn *net.TCPConn, hdr *messages.AccessHeader) {
	defer observeAccess(f.peerString(), hdr.ServiceId)()
	// Early data: the stream comes back once its header is written, and
	// the client's first bytes follow it without waiting for the peer's
	// reply; the peer admits the service before they reach it. What the
	// client has sent already (a request, a TLS hello) goes in the
	// header's own write.
	first := firstBuffers.Get().(*[]byte)
	n := access.ReadReady(conn, *first)
	dialCtx, cancel := context.WithTimeout(access.WithFirstBytes(access.WithEarlyData(ctx), (*first)[:n]), 10*time.Second)
	stream, err := f.dial(dialCtx, f.peer, hdr)
	cancel()
	firstBuffers.Put(first)
	if err != nil {
		// A request read already cannot be awaited again.
		f.refuse(conn, err, n == 0)
		return
	}
	counted := accessBytesCounter(f.peerString(), hdr.ServiceId)
	if counted != nil && n > 0 {
		counted(true, n)
	}
	// A forwarder that stops (detach, shutdown) resets its streams: a
	// plain close would leave the peer's side of the bridge waiting.
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		if r, ok := stream.(interface{ Reset() error }); ok {
			r.Reset()
			return
		}
		stream.Close()
	})
	defer stop()
	if as, ok := stream.(*access.Stream); ok {
		// The request already went out behind the header: the refusal
		// page must not wait for another.
		access.PipeStream(conn, as, func(err error) { f.refuse(conn, err, false) }, counted)
		return
	}
	access.Pipe(conn, stream)
}

// firstBuffers hold a client's first bytes on their way into the header's
// write: a request line and headers, a TLS hello; larger requests follow
// through the bridge.
var firstBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// refuse tells the client why, where the protocol has a way to: a web
// service gets an HTTP page, 503 when a stream limit (this node's or the
// peer's) turned the connection away, so clients retry, and 502 when the
// peer or service cannot be reached; anything else just sees the close.
// awaitRequest lets the request arrive first when it has not been read.
func (f *accessForwarder) refuse(conn *net.TCPConn, err error, awaitRequest bool) {
	f.logger.Warn("access connection refused", "service", f.rec.ServiceID, "peer", f.peer.String(), "err", err)
	defer conn.Close()
	if f.rec.Usage != "web" {
		return
	}
	conn.SetDeadline(time.Now().Add(refuseTimeout))
	if awaitRequest {
		buf := make([]byte, 16<<10)
		conn.Read(buf) // let the request arrive, so the close does not reset it
	}
	status, extra := "502 Bad Gateway", ""
	if errors.Is(err, wire.ErrStreamLimit) {
		status, extra = "503 Service Unavailable", "Retry-After: 1\r\n"
	}
	node := "peer " + f.peer.String()
	if f.rec.Alias != "" {
		node = fmt.Sprintf("%s (%s)", f.rec.Alias, f.peer)
	}
	// The words say what happened (refused, timed out, not trusted), not
	// libp2p's "all dials failed …", as the CLI's errors do.
	body := fmt.Sprintf("fungi: cannot reach %s on %s: %v\n", f.rec.ServiceID, node, err)
	if cause := dialerr.Classify(err); cause != dialerr.Unknown && !errors.Is(err, wire.ErrStreamLimit) {
		body = fmt.Sprintf("fungi: cannot reach %s: %s %s\n", f.rec.ServiceID, node, dialerr.Words(err))
	}
	fmt.Fprintf(conn, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n%s", status, len(body), extra, body)
	conn.CloseWrite()
}

// refuseTimeout bounds the refusal page: the wait for the request and the
// write of the answer to a client that may not read it.
const refuseTimeout = 2 * time.Second
