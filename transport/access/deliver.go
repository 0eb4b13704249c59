package access

import (
	"context"
	"net"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/libp2p/go-libp2p/core/network"
	goyamux "github.com/libp2p/go-yamux/v5"
)

// yamuxStreamOf finds the yamux stream under an access stream, or nil when
// there is none (QUIC, a test double).
func yamuxStreamOf(s any) *goyamux.Stream {
	ys, _ := muxedStreamOf(s).(*goyamux.Stream)
	return ys
}

// muxedStreamOf finds the muxer's own stream under an access stream: a
// *goyamux.Stream, or QUIC's stream (a value holding a *quic.Stream), or
// nil when s wraps neither. libp2p hides it under two wrappers with no
// accessor: the host's stream wrapper (an embedded network.Stream) and the
// swarm's stream (an unexported field), both read here by reflection.
// TestYamuxStreamOf and TestAccessDialerSkipsStreamsThePeerEnded/quic fail if a go-libp2p
// upgrade moves them.
func muxedStreamOf(s any) any {
	for range 8 {
		switch v := s.(type) {
		case *goyamux.Stream:
			return v
		case *Stream:
			if v == nil {
				return nil
			}
			s = v.bufferedStream.Stream
			continue
		case *bufferedStream:
			if v == nil {
				return nil
			}
			s = v.Stream
			continue
		case nil:
			return nil
		case interface{ Context() context.Context }:
			// QUIC's stream: the only one here with a context.
			return v
		}
		rv := reflect.ValueOf(s)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			return nil
		}
		if rv.Type().ConvertibleTo(yamuxStreamType) {
			return rv.Convert(yamuxStreamType).Interface().(*goyamux.Stream)
		}
		if rv.Elem().Kind() != reflect.Struct {
			return nil
		}
		inner := innerStream(rv.Elem())
		if inner == nil {
			return nil
		}
		s = inner
	}
	return nil
}

// streamEnded reports whether the muxer already knows that s ended: the
// peer closed or reset it, or its connection went. A yamux stream says so
// itself (Stream.Intact, fungi's fork); a QUIC stream's context ends with
// its sending side, which the peer's reset (STOP_SENDING) ends too. Other
// streams report false.
func streamEnded(s any) bool {
	switch m := muxedStreamOf(s).(type) {
	case *goyamux.Stream:
		return !m.Intact()
	case interface{ Context() context.Context }:
		return m.Context().Err() != nil
	}
	return false
}

var (
	yamuxStreamType = reflect.TypeOf((*goyamux.Stream)(nil))
	streamType      = reflect.TypeOf((*network.Stream)(nil)).Elem()
	muxedStreamType = reflect.TypeOf((*network.MuxedStream)(nil)).Elem()
)

// innerStream is the stream a wrapper struct holds: an embedded
// network.Stream (basichost) or a field named stream of type
// network.MuxedStream (swarm).
func innerStream(v reflect.Value) any {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !(f.Type == streamType && f.Anonymous) && !(f.Type == muxedStreamType && f.Name == "stream") {
			continue
		}
		fv := v.Field(i)
		if !fv.CanInterface() {
			if !fv.CanAddr() {
				return nil
			}
			fv = reflect.NewAt(fv.Type(), unsafe.Pointer(fv.UnsafeAddr())).Elem()
		}
		if fv.IsNil() {
			return nil
		}
		return fv.Interface()
	}
	return nil
}

// deliverMax is the largest frame delivered from the receive loop. A
// request or a reply saves a goroutine hand-off that way; a bulk transfer's
// large frames go through the bridge's own goroutine, so decrypting the
// next frame and writing this one to the socket run side by side.
const deliverMax = 16 << 10

// deliveredBytes counts the bytes this process's bridges took from a
// receive loop straight to their socket; tests read it to see delivery
// happen.
var deliveredBytes atomic.Int64

// deliverTo sets up delivery from the yamux receive loop straight to conn
// for the stream src: while the bridge waits for the stream's next bytes,
// they are written to conn without a goroutine hand-off (one fewer wake-up
// per message on each node). It returns the function that ends it, or nil
// when src or conn does not allow it. Both callbacks run on the receive
// loop: allowed says whether to deliver now, wrote is told what was.
func deliverTo(conn net.Conn, src any, allowed func() bool, wrote func(n int)) func() {
	ys := yamuxStreamOf(src)
	tcp, ok := conn.(*net.TCPConn)
	if ys == nil || !ok {
		return nil
	}
	write := nonBlockingWriter(tcp)
	if write == nil {
		return nil
	}
	ys.SetDeliver(deliverMax, func(b []byte) int {
		if !allowed() {
			return 0
		}
		n := write(b)
		if n > 0 {
			deliveredBytes.Add(int64(n))
			wrote(n)
		}
		return n
	})
	return func() { ys.SetDeliver(0, nil) }
}
