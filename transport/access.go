package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
)

// AccessResolver turns an access header from a peer into the local address
// of the service, or refuses it with a reason the peer is shown.
type AccessResolver func(from peer.ID, hdr *messages.AccessHeader) (addr string, err error)

// ServeAccess registers the access protocol on h: a header naming service
// and port, a reply, then raw bytes both ways.
func ServeAccess(h host.Host, gate *TrustGate, resolve AccessResolver, logf func(string, ...any)) {
	h.SetStreamHandler(AccessProtocol, func(s network.Stream) {
		from := s.Conn().RemotePeer()
		if gate.Role(from) == "" {
			s.Reset()
			return
		}
		s.SetReadDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(s)
		var hdr messages.AccessHeader
		if err := ReadFrame(br, &hdr, MaxAccessFrame); err != nil {
			WriteFrame(s, &messages.AccessReply{Error: "bad access header: " + err.Error()})
			s.Close()
			return
		}
		s.SetReadDeadline(time.Time{})
		addr, err := resolve(from, &hdr)
		if err != nil {
			logf("access from %s to %s refused: %v", from, hdr.ServiceId, err)
			WriteFrame(s, &messages.AccessReply{Error: err.Error()})
			s.Close()
			return
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			logf("access from %s: %s does not answer on %s: %v", from, hdr.ServiceId, addr, err)
			WriteFrame(s, &messages.AccessReply{Error: fmt.Sprintf("%s is published but does not answer on its port: %v", hdr.ServiceId, err)})
			s.Close()
			return
		}
		if err := WriteFrame(s, &messages.AccessReply{Ok: true}); err != nil {
			conn.Close()
			s.Reset()
			return
		}
		Pipe(conn.(*net.TCPConn), &bufferedStream{Stream: s, r: br})
	})
}

// OpenAccess opens an access stream to p for one connection and returns it
// once the peer accepted; a refusal comes back as its reason.
func OpenAccess(ctx context.Context, h host.Host, p peer.ID, hdr *messages.AccessHeader) (HalfCloser, error) {
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "fungi access"), p, AccessProtocol)
	if err != nil {
		return nil, err
	}
	if err := WriteFrame(s, hdr); err != nil {
		s.Reset()
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		s.SetReadDeadline(d)
	}
	br := bufio.NewReader(s)
	var reply messages.AccessReply
	if err := ReadFrame(br, &reply, MaxAccessFrame); err != nil {
		s.Reset()
		return nil, fmt.Errorf("the peer did not accept the connection: %w", err)
	}
	s.SetReadDeadline(time.Time{})
	if !reply.Ok {
		s.Close()
		return nil, &RemoteError{Code: "denied", Message: reply.Error}
	}
	return &bufferedStream{Stream: s, r: br}, nil
}

// HalfCloser is a connection that can end its writing side alone.
type HalfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// bufferedStream reads through the bufio.Reader that read the header, so no
// byte the peer sent right behind it is lost.
type bufferedStream struct {
	network.Stream
	r *bufio.Reader
}

func (b *bufferedStream) Read(p []byte) (int, error) { return b.r.Read(p) }

// WriteTo lets io.Copy drain the buffer and then the stream with one
// buffer of its own size.
func (b *bufferedStream) WriteTo(w io.Writer) (int64, error) { return b.r.WriteTo(w) }

var pipeBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// Pipe copies both ways until both sides finished. When one side ends its
// writing, the other's writing side is closed too (half-close), so request
// bodies that end with EOF work; an error on either side closes both.
func Pipe(a, b HalfCloser) {
	var wg sync.WaitGroup
	var once sync.Once
	abort := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	copyHalf := func(dst, src HalfCloser) {
		defer wg.Done()
		buf := pipeBuffers.Get().(*[]byte)
		defer pipeBuffers.Put(buf)
		// onlyReader hides WriteTo/ReadFrom, which would copy in 32 KiB
		// pieces; large reads mean fewer syscalls and fuller frames.
		if _, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *buf); err != nil && !errors.Is(err, io.EOF) {
			abort()
			return
		}
		dst.CloseWrite()
	}
	wg.Add(2)
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
	abort()
}
