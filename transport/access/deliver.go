package access

import (
	"context"
	"net"
	"reflect"
	"sync"
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
		switch step := unwrapStepOf(rv.Type()); {
		case step.convert:
			// A pointer convertible to *goyamux.Stream points to the same
			// memory layout: reading it as one is the conversion, without
			// reflect's per-call type comparison (0.4% of a forwarding
			// daemon's CPU per new connection).
			return (*goyamux.Stream)(rv.UnsafePointer())
		case step.field < 0:
			return nil
		default:
			fv := rv.Elem().Field(step.field)
			if !fv.CanInterface() {
				fv = reflect.NewAt(fv.Type(), unsafe.Pointer(fv.UnsafeAddr())).Elem()
			}
			if fv.IsNil() {
				return nil
			}
			s = fv.Interface()
		}
	}
	return nil
}

// unwrapStep is how muxedStreamOf gets one layer further under a pointer
// type: convert it to *goyamux.Stream (libp2p's yamux stream is a defined
// type over it), or read the field at index field of what it points to (-1:
// neither, a dead end).
type unwrapStep struct {
	convert bool
	field   int
}

// unwrapSteps caches unwrapStep by type: ConvertibleTo and the field
// search cost several microseconds and a stack growth per call, and every
// access stream asks them of the same three types.
var unwrapSteps sync.Map // reflect.Type -> unwrapStep

func unwrapStepOf(t reflect.Type) unwrapStep {
	if v, ok := unwrapSteps.Load(t); ok {
		return v.(unwrapStep)
	}
	step := unwrapStep{field: -1}
	switch {
	case t.ConvertibleTo(yamuxStreamType):
		step.convert = true
	case t.Elem().Kind() == reflect.Struct:
		step.field = innerStreamField(t.Elem())
	}
	unwrapSteps.Store(t, step)
	return step
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

// innerStreamField is the index of the field that holds the stream in a
// wrapper struct: an embedded network.Stream (basichost) or a field named
// stream of type network.MuxedStream (swarm); -1 when there is none.
func innerStreamField(t reflect.Type) int {
	for i := range t.NumField() {
		f := t.Field(i)
		if (f.Type == streamType && f.Anonymous) || (f.Type == muxedStreamType && f.Name == "stream") {
			return i
		}
	}
	return -1
}

// deliverMax is the largest piece of a frame the receive loop writes to
// the local socket at once (frames of any size are delivered, in pieces).
// A request or a reply saves a goroutine hand-off that way; a bulk
// transfer saves the hand-off and a copy through the stream's buffer on
// every frame: the receive loop decrypts and writes, as ssh's single
// process does, which on two cores shared by the client, both daemons and
// the service beat decrypting and writing side by side (B's CPU per GiB
// 0.81-0.90 s against 0.99-1.23 s, third_party/go-yamux/README.md).
// 128 KiB, the bridge's buffer and so A's largest frame, did better than
// 64 or 256 KiB: fewer writes than the first, less memory to pass through
// the cache than the second.
const deliverMax = 128 << 10

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
	counted := func(n int) {
		deliveredBytes.Add(int64(n))
		wrote(n)
	}
	take := func(b []byte) int {
		n := write(b)
		if n > 0 {
			counted(n)
		}
		return n
	}
	if chunks := chunksOf(src); chunks != nil {
		// A reusable stream's bytes are chunks: the data in them is
		// delivered, the framing taken apart on the way.
		take = func(b []byte) int { return chunks.deliver(b, write, counted) }
	}
	ys.SetDeliver(deliverMax, func(b []byte) int {
		if !allowed() {
			return 0
		}
		return take(b)
	})
	return func() { ys.SetDeliver(0, nil) }
}
