package access

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// On wire.AccessReuseProtocol a stream carries one connection after
// another. The header and the reply are the same frames as on
// wire.AccessProtocol; the bytes behind them travel in chunks, a 4-byte
// big-endian length and that many bytes, and a chunk of length 0 ends its
// direction where a FIN ends it on a stream of its own. Once both
// directions ended on the serving side and neither failed there, it sends
// a release, a second zero-length chunk (with its end marker when that
// goes last); an opener whose own side ended cleanly too may then send the
// next header on the same stream: a new connection opens no stream, and
// the peer runs no accept, no protocol selection and no handler start for
// it. The release is what tells the opener that the serving side took
// every byte it was sent: without it, an opener whose upload went out
// whole would reuse a stream the peer is resetting because the service
// stopped reading. Anything else (a reset, a refusal, a stream closed
// without its end) ends the stream as on wire.AccessProtocol.
const (
	chunkHeaderLen = 4
	// maxChunk bounds a chunk: a writer splits larger writes, and a length
	// above it is a peer out of step, not data.
	maxChunk = 1 << 20
)

var (
	errChunkTooLarge = fmt.Errorf("access stream: a chunk over the %d-byte limit", maxChunk)
	// errEndMissing is a reusable stream that ended before its
	// connection's end marker: the peer closed it mid-connection.
	errEndMissing = errors.New("access stream: the peer closed the stream before the connection's end")
)

// chunkConn is a reusable access stream's framing: the state of the
// incoming chunks, which outlives each connection on the stream, and what
// each connection did to it.
type chunkConn struct {
	s network.Stream
	// raw is where the stream's bytes are read: what a connection's
	// reader read past its end first (the next header), then the stream
	// through the reader that read the first header.
	raw stashReader

	// mu orders the reader (Read) and the muxer's receive loop
	// (deliver), which take the same incoming bytes apart in turn.
	mu    sync.Mutex
	left  int                  // data bytes still to come in the current chunk
	hdr   [chunkHeaderLen]byte // a chunk header read in pieces
	have  int                  // how much of hdr
	ended bool                 // this connection's end marker arrived
	rerr  error                // a read failed: every later Read gets it
	gen   uint64               // moved by deliver: the reader's view went stale

	// wmu guards the writing side (one chunk write at a time) and what
	// the connection did to the stream.
	wmu      sync.Mutex
	serving  bool                // the serving side: it sends the release
	sent     bool                // this connection's end marker went out
	inDone   bool                // the serving side: the bytes in went whole to the service
	released bool                // the release went out (serving) or came in (opening)
	fail     bool                // a write failed or the stream was reset
	once     *sync.Once          // done, once per connection
	done     func(reusable bool) // told how the connection left the stream
	conn     atomic.Uint64       // the number of the connection on the stream
}

// endMarkers is the end marker and the release behind it, both zero
// lengths.
var endMarkers [2 * chunkHeaderLen]byte

func newChunkConn(s network.Stream, br *bufio.Reader, serving bool) *chunkConn {
	return &chunkConn{s: s, raw: stashReader{br: br, s: s}, serving: serving}
}

// begin readies the stream for its next connection and returns the
// connection's number: a handle of an earlier connection on the stream
// (current says) can no longer touch it.
func (c *chunkConn) begin(done func(reusable bool)) uint64 {
	c.mu.Lock()
	c.left, c.have, c.ended, c.rerr = 0, 0, false, nil
	c.mu.Unlock()
	c.wmu.Lock()
	c.sent, c.inDone, c.released, c.fail = false, false, false, false
	c.once, c.done = new(sync.Once), done
	c.wmu.Unlock()
	return c.conn.Add(1)
}

// current reports whether n is the connection the stream carries now.
func (c *chunkConn) current(n uint64) bool { return c.conn.Load() == n }

// inputDone tells the serving side that the connection's bytes in ended
// and went whole to the service (its writing side closed).
func (c *chunkConn) inputDone() {
	c.wmu.Lock()
	c.inDone = true
	c.wmu.Unlock()
}

// read is Read for the connection: the data of its chunks, then io.EOF at
// its end marker.
func (c *chunkConn) read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		switch {
		case c.ended:
			c.mu.Unlock()
			return 0, io.EOF
		case c.rerr != nil:
			err := c.rerr
			c.mu.Unlock()
			return 0, err
		case len(p) == 0:
			c.mu.Unlock()
			return 0, nil
		}
		// Read no further than the current chunk's data, or than its
		// header: the bytes then need no taking apart, unless the
		// receive loop delivered some meanwhile (gen moved), after which
		// they are taken apart from where it left off.
		want := min(len(p), chunkHeaderLen-c.have)
		if c.left > 0 {
			want = min(len(p), c.left)
		}
		gen := c.gen
		c.mu.Unlock()
		n, err := c.raw.Read(p[:want])
		c.mu.Lock()
		out := 0
		if n > 0 {
			if gen == c.gen && c.left > 0 {
				c.left -= n
				out = n
			} else {
				out = c.parseLocked(p[:n])
			}
		}
		if err != nil && c.rerr == nil && !c.ended {
			if errors.Is(err, io.EOF) {
				err = errEndMissing
			}
			c.rerr = err
		}
		c.mu.Unlock()
		if out > 0 {
			return out, nil
		}
	}
}

// parseLocked takes b, bytes just read from the stream, apart from the
// current state: their data moves to b's front and its length is
// returned. Bytes past the end marker belong to the next connection and
// are kept for it.
func (c *chunkConn) parseLocked(b []byte) int {
	out := 0
	for i := 0; i < len(b); {
		if c.left > 0 {
			m := min(c.left, len(b)-i)
			copy(b[out:], b[i:i+m])
			out += m
			i += m
			c.left -= m
			continue
		}
		m := copy(c.hdr[c.have:], b[i:])
		c.have += m
		i += m
		if c.have < chunkHeaderLen {
			break
		}
		c.have = 0
		l := binary.BigEndian.Uint32(c.hdr[:])
		switch {
		case l == 0:
			c.ended = true
			c.raw.keep(b[i:])
			return out
		case l > maxChunk:
			c.rerr = errChunkTooLarge
			return out
		}
		c.left = int(l)
	}
	return out
}

// deliver is the muxer receive loop's share of read: it writes the data
// in b, a piece of the stream's bytes, with write (which must not block)
// and returns how much of b it took. It stops before whatever write would
// not take, a chunk header the piece cuts, and the end marker or a bad
// length: the muxer buffers the rest for read, which deals with them.
func (c *chunkConn) deliver(b []byte, write func([]byte) int, wrote func(int)) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.rerr != nil || c.have > 0 {
		return 0
	}
	taken := 0
	for taken < len(b) {
		if c.left == 0 {
			if len(b)-taken < chunkHeaderLen {
				break
			}
			l := binary.BigEndian.Uint32(b[taken:])
			if l == 0 || l > maxChunk {
				break
			}
			c.left = int(l)
			taken += chunkHeaderLen
			c.gen++
			continue
		}
		run := b[taken : taken+min(c.left, len(b)-taken)]
		n := write(run)
		if n > 0 {
			c.left -= n
			taken += n
			c.gen++
			wrote(n)
		}
		if n < len(run) {
			break
		}
	}
	return taken
}

// write sends p in chunks. Each chunk goes out in one write of the stream,
// so it costs one muxer frame as a plain write would.
func (c *chunkConn) write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sent {
		return 0, io.ErrClosedPipe
	}
	total := 0
	for len(p) > 0 {
		m := min(len(p), maxChunk)
		buf := make([]byte, chunkHeaderLen+m)
		putChunkHeader(buf, m)
		copy(buf[chunkHeaderLen:], p[:m])
		if _, err := c.s.Write(buf); err != nil {
			c.fail = true
			return total, err
		}
		total += m
		p = p[m:]
	}
	return total, nil
}

// writeFramed sends b as it is: a caller that left room for the chunk
// header in front of its data and filled it (putChunkHeader).
func (c *chunkConn) writeFramed(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sent {
		return io.ErrClosedPipe
	}
	if _, err := c.s.Write(b); err != nil {
		c.fail = true
		return err
	}
	return nil
}

// putChunkHeader writes the header of a chunk of n bytes into h.
func putChunkHeader(h []byte, n int) { binary.BigEndian.PutUint32(h, uint32(n)) }

// closeWrite sends the end marker: the connection's half-close. On the
// serving side, once the bytes in are done too, the release goes with it.
func (c *chunkConn) closeWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sent {
		return nil
	}
	markers := endMarkers[:chunkHeaderLen]
	release := c.serving && c.inDone && !c.fail
	if release {
		markers = endMarkers[:]
	}
	if _, err := c.s.Write(markers); err != nil {
		c.fail = true
		return err
	}
	c.sent, c.released = true, release
	return nil
}

// close ends the connection on the stream: a stream whose connection
// ended cleanly both ways is handed on for the next one (done(true)),
// after the serving side sent its release and the opening side read it;
// any other is reset, as a stream of its own would be.
func (c *chunkConn) close() error {
	c.mu.Lock()
	clean := c.ended && c.rerr == nil
	c.mu.Unlock()
	c.wmu.Lock()
	clean = clean && c.sent && !c.fail && (!c.serving || c.inDone)
	if clean && c.serving && !c.released {
		if _, err := c.s.Write(endMarkers[:chunkHeaderLen]); err != nil {
			clean = false
		}
		c.released = true
	}
	awaitRelease := clean && !c.serving && !c.released
	once, done := c.once, c.done
	c.wmu.Unlock()
	if awaitRelease {
		clean = c.readRelease()
	}
	if !clean {
		return c.reset()
	}
	c.s.SetDeadline(time.Time{})
	if once != nil {
		once.Do(func() { done(true) })
	}
	return nil
}

// releaseWait bounds how long the opening side waits for the serving
// side's release once its connection ended. The release comes with the
// serving side's end marker or right behind it; the client is gone by
// then, so only the stream waits, and one whose release does not come is
// not reused.
const releaseWait = time.Second

// readRelease reads the serving side's release behind its end marker
// (the opening side's close): it usually came in the same frame and is
// read from a buffer.
func (c *chunkConn) readRelease() bool {
	if c.raw.buffered() < chunkHeaderLen {
		c.s.SetReadDeadline(time.Now().Add(releaseWait))
	}
	var m [chunkHeaderLen]byte
	if _, err := io.ReadFull(&c.raw, m[:]); err != nil || m != [chunkHeaderLen]byte{} {
		return false
	}
	c.wmu.Lock()
	c.released = true
	c.wmu.Unlock()
	return true
}

// reset ends the stream for good.
func (c *chunkConn) reset() error {
	c.wmu.Lock()
	ended := c.sent && !c.fail
	c.fail = true
	once, done := c.once, c.done
	c.wmu.Unlock()
	if ended {
		// This side's bytes all went, with their end: a FIN ahead of the
		// reset keeps the muxer from dropping what the peer has not
		// read yet (a reset drops only a side still open), as on a
		// stream of its own, whose end is the FIN.
		c.s.CloseWrite()
	}
	err := c.s.Reset()
	if once != nil {
		once.Do(func() { done(false) })
	}
	return err
}

// stashReader reads what a connection read past its end, then what br
// holds, then the stream itself: a chunk's data comes straight from the
// muxer, not through br's buffer in pieces of its size (a copy more, and
// a write more to the socket for each piece).
type stashReader struct {
	stash []byte
	br    *bufio.Reader
	s     io.Reader
}

// buffered is how many bytes s has without reading the stream.
func (s *stashReader) buffered() int { return len(s.stash) + s.br.Buffered() }

func (s *stashReader) keep(b []byte) {
	if len(b) > 0 {
		s.stash = append(s.stash, b...)
	}
}

func (s *stashReader) Read(p []byte) (int, error) {
	if len(s.stash) > 0 {
		n := copy(p, s.stash)
		s.stash = s.stash[n:]
		return n, nil
	}
	if s.br.Buffered() > 0 || s.s == nil {
		return s.br.Read(p)
	}
	return s.s.Read(p)
}

func (s *stashReader) ReadByte() (byte, error) {
	if len(s.stash) > 0 {
		b := s.stash[0]
		s.stash = s.stash[1:]
		return b, nil
	}
	return s.br.ReadByte()
}
