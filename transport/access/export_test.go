package access

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// What the external tests (package access_test), which start real hosts
// with transport, need of this package's insides.

// WarmStreams is accessWarmStreams.
const WarmStreams = accessWarmStreams

var (
	// YamuxStreamOf is yamuxStreamOf.
	YamuxStreamOf = yamuxStreamOf
	// StreamEnded is streamEnded.
	StreamEnded = streamEnded
	// NilBuffered is a nil *bufferedStream.
	NilBuffered any = (*bufferedStream)(nil)
)

// DeliveredBytes is how many bytes bridges took from a receive loop
// straight to their socket so far.
func DeliveredBytes() int64 { return deliveredBytes.Load() }

// Buffered wraps s as Serve does before bridging it.
func Buffered(s network.Stream) any { return &bufferedStream{Stream: s} }

// Opened wraps s as OpenOn does.
func Opened(s network.Stream) *Stream { return &Stream{bufferedStream: bufferedStream{Stream: s}} }

// Underlying is the stream under s, when s is a *Stream, else nil.
func Underlying(s HalfCloser) network.Stream {
	if as, ok := s.(*Stream); ok {
		return as.bufferedStream.Stream
	}
	return nil
}

// SetMaxAge sets how long d keeps a warm stream nobody takes.
func (d *Dialer) SetMaxAge(age time.Duration) { d.maxAge = age }

// Ready is d's warm streams to p, the next to be taken last.
func (d *Dialer) Ready(p peer.ID) []network.Stream {
	pool := d.pool(p)
	pool.mu.Lock()
	defer pool.mu.Unlock()
	var out []network.Stream
	for _, st := range pool.ready {
		out = append(out, st.s)
	}
	return out
}

// Counts is how many streams to p d holds warm, is warming, and warmed
// in all.
func (d *Dialer) Counts(p peer.ID) (ready, filling, warmed int) {
	pool := d.pool(p)
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return len(pool.ready), pool.filling, pool.warmed
}

// Reused is how many connections to p went on a stream back from an
// earlier one.
func (d *Dialer) Reused(p peer.ID) int {
	pool := d.pool(p)
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.reused
}

// NextReused is the stream d takes next for p when that is one back from
// a connection (with the peer's release); else nil.
func (d *Dialer) NextReused(p peer.ID) network.Stream {
	pool := d.pool(p)
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if len(pool.ready) == 0 {
		return nil
	}
	st := pool.ready[len(pool.ready)-1]
	if st.back == nil {
		return nil
	}
	return st.s
}

// ShortPipeTimers makes Pipe's no-progress deadlines fast for a test.
func ShortPipeTimers(t *testing.T) {
	stall, idle := pipeWriteStall, pipeHalfIdle
	pipeWriteStall, pipeHalfIdle = 2*time.Second, 300*time.Millisecond
	t.Cleanup(func() { pipeWriteStall, pipeHalfIdle = stall, idle })
}
