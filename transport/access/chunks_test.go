package access

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// incoming is the muxer under a chunkConn in a test: the bytes the peer
// sent, handed out in reads of the sizes the script says. Whenever the
// reader has to read from it (it would wait in the muxer), the receive
// loop may deliver first, as the fork's does: the script says how much it
// offers and how much the socket takes.
type incoming struct {
	c      *chunkConn
	b      []byte
	script []byte
	out    *bytes.Buffer // what deliver wrote
}

func (in *incoming) next() int {
	if len(in.script) == 0 {
		return 255
	}
	v := int(in.script[0])
	in.script = in.script[1:]
	return v
}

func (in *incoming) Read(p []byte) (int, error) {
	if len(in.b) == 0 {
		return 0, io.EOF
	}
	if offer := in.next() % 4; offer != 0 && in.c.mu.TryLock() {
		// The reader is parked in the muxer (it holds no lock): a frame
		// arrives and the receive loop offers a piece of it.
		in.c.mu.Unlock()
		piece := in.b[:min(len(in.b), 1+in.next()*offer)]
		accept := in.next()
		took := in.c.deliver(piece, func(b []byte) int {
			n := min(len(b), accept*7+1)
			if accept == 0 {
				n = 0
			}
			in.out.Write(b[:n])
			return n
		}, func(int) {})
		in.b = in.b[took:]
		if len(in.b) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, in.b[:min(len(in.b), 1+in.next()*3)])
	in.b = in.b[n:]
	return n, nil
}

// chunked is data as a writer on a reusable stream sends it, in chunks of
// the sizes sizes gives, then the end marker, then trailer (the next
// connection's header).
func chunked(data []byte, sizes []byte, trailer []byte) []byte {
	var out []byte
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(sizes) > 0 {
			n = min(n, 1+int(sizes[i%len(sizes)])*5)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(n))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	out = append(out, 0, 0, 0, 0)
	return append(out, trailer...)
}

// readConnection reads one connection's data from c the way a bridge
// does (deliver and read taking turns), then the trailer.
func readConnection(t *testing.T, wire []byte, script []byte, readSize int) (got []byte, trailer []byte, err error) {
	t.Helper()
	var delivered bytes.Buffer
	in := &incoming{b: wire, script: script, out: &delivered}
	c := newChunkConn(nil, bufio.NewReaderSize(in, 16), false)
	if len(script) > 0 && script[0]%2 == 1 {
		// As on a stream: what the buffer does not hold comes straight
		// from the muxer.
		c.raw.s = in
	}
	in.c = c
	c.begin(func(bool) {})
	var read bytes.Buffer
	buf := make([]byte, readSize)
	for {
		n, rerr := c.read(buf)
		read.Write(buf[:n])
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				return nil, nil, rerr
			}
			break
		}
		// The reader and the receive loop write to the same socket: in
		// order, since deliver runs only while the reader waits.
		delivered.Write(read.Bytes())
		read.Reset()
	}
	rest, _ := io.ReadAll(&c.raw)
	return delivered.Bytes(), rest, nil
}

// Whatever the chunk sizes, the reads' sizes and the receive loop's
// deliveries in between, the bridge gets the connection's bytes once, in
// order, then its end, and the bytes behind the end marker stay for the
// next connection.
func TestChunksReassembleUnderAnyInterleaving(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 300)
	trailer := []byte("\x05next!")
	for seed := range 200 {
		script := make([]byte, 64)
		for i := range script {
			script[i] = byte(seed*31 + i*i*7 + i)
		}
		wire := chunked(data, script[:5], trailer)
		got, rest, err := readConnection(t, wire, script, 1+seed%37)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("seed %d: the bridge got %d bytes, not the %d sent (or not in order)", seed, len(got), len(data))
		}
		if !bytes.Equal(rest, trailer) {
			t.Fatalf("seed %d: the next connection's bytes are %q, not %q", seed, rest, trailer)
		}
	}
}

// A length above the limit is a peer out of step: the read fails, and
// nothing past it is taken for data.
func TestChunkOverTheLimitFails(t *testing.T) {
	wire := binary.BigEndian.AppendUint32(nil, maxChunk+1)
	wire = append(wire, make([]byte, 64)...)
	_, _, err := readConnection(t, wire, nil, 32)
	if !errors.Is(err, errChunkTooLarge) {
		t.Fatalf("a chunk over the limit read as %v", err)
	}
}

// A stream that ends before the connection's end marker is not a clean
// end: the read fails with errEndMissing, never io.EOF, so the stream is
// not reused.
func TestStreamEndingBeforeTheEndMarkerFails(t *testing.T) {
	wire := chunked([]byte("hello"), nil, nil)
	wire = wire[:len(wire)-chunkHeaderLen] // no end marker
	_, _, err := readConnection(t, wire, nil, 32)
	if !errors.Is(err, errEndMissing) {
		t.Fatalf("a stream cut before its end marker read as %v", err)
	}
}

func FuzzChunkReader(f *testing.F) {
	f.Add([]byte("some data that goes in chunks"), []byte{1, 2, 3}, []byte{0, 1, 2, 3, 4, 5, 6}, uint8(7))
	f.Add(bytes.Repeat([]byte{0}, 100), []byte{0}, []byte{255, 0, 3, 3}, uint8(1))
	f.Fuzz(func(t *testing.T, data, sizes, script []byte, readSize uint8) {
		if len(data) > 1<<16 {
			return
		}
		trailer := []byte("\x07header!")
		got, rest, err := readConnection(t, chunked(data, sizes, trailer), script, 1+int(readSize))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes, sent %d", len(got), len(data))
		}
		if !bytes.Equal(rest, trailer) {
			t.Fatalf("the next connection's bytes are %q", rest)
		}
	})
}

// Arbitrary bytes from a peer never panic the reader nor make it return
// more than it was given.
func FuzzChunkReaderArbitraryInput(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0}, []byte{1, 2})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, wire, script []byte) {
		got, _, _ := readConnection(t, wire, script, 13)
		if len(got) > len(wire) {
			t.Fatalf("%d bytes out of %d in", len(got), len(wire))
		}
	})
}

// recordingStream is the stream under a chunkConn in a unit test: it
// records what is written and whether it was reset.
type recordingStream struct {
	network.Stream
	in       io.Reader // what the peer sent
	wrote    bytes.Buffer
	reset    bool
	finished bool
}

func (r *recordingStream) Write(b []byte) (int, error) { return r.wrote.Write(b) }
func (r *recordingStream) Read(b []byte) (int, error)  { return r.in.Read(b) }
func (r *recordingStream) Reset() error                { r.reset = true; return nil }
func (r *recordingStream) CloseWrite() error           { r.finished = true; return nil }
func (r *recordingStream) SetDeadline(time.Time) error { return nil }

// servingConn is the serving side of a reusable stream whose connection's
// incoming bytes have just ended (the opener's end marker read).
func servingConn(t *testing.T) (*chunkConn, *recordingStream, *bool) {
	t.Helper()
	rs := &recordingStream{in: bytes.NewReader(nil)}
	c := newChunkConn(rs, bufio.NewReader(rs), true)
	reusable := new(bool)
	c.begin(func(ok bool) { *reusable = ok })
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	return c, rs, reusable
}

// The serving side releases the stream only once the connection's bytes in
// went whole to the service: its end marker goes alone while they have
// not, and a connection that ends without them resets the stream.
func TestServingSideReleasesOnlyAfterTheBytesInWentToTheService(t *testing.T) {
	end, release := []byte{0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 0}

	c, rs, reusable := servingConn(t)
	c.closeWrite()
	if !bytes.Equal(rs.wrote.Bytes(), end) {
		t.Fatalf("the end marker with the bytes in not yet at the service: %x", rs.wrote.Bytes())
	}
	c.close() // the pipe failed to hand them on: no inputDone
	if *reusable || !rs.reset {
		t.Fatalf("a connection whose bytes in did not reach the service left its stream (reusable %v, reset %v)", *reusable, rs.reset)
	}
	if !bytes.Equal(rs.wrote.Bytes(), end) {
		t.Fatalf("a release went out for it: %x", rs.wrote.Bytes())
	}

	c, rs, reusable = servingConn(t)
	c.inputDone()
	c.closeWrite()
	if !bytes.Equal(rs.wrote.Bytes(), release) {
		t.Fatalf("the end marker and the release, the bytes in done: %x", rs.wrote.Bytes())
	}
	c.close()
	if !*reusable || rs.reset {
		t.Fatal("a clean connection did not leave its stream for the next")
	}

	c, rs, reusable = servingConn(t)
	c.closeWrite()
	c.inputDone() // the bytes in finished after the end marker went
	c.close()
	if !*reusable || !bytes.Equal(rs.wrote.Bytes(), release) {
		t.Fatalf("the release after the end marker: %x, reusable %v", rs.wrote.Bytes(), *reusable)
	}
}

func (r *recordingStream) SetReadDeadline(time.Time) error { return nil }

// The opening side hands its stream on only with the serving side's
// release read behind the end marker; anything else there resets it.
func TestOpeningSideTakesTheStreamBackOnlyWithTheRelease(t *testing.T) {
	for name, behind := range map[string][]byte{
		"release":      {0, 0, 0, 0},
		"nothing":      {},
		"a data chunk": {0, 0, 0, 1, 'x'},
	} {
		t.Run(name, func(t *testing.T) {
			rs := &recordingStream{in: bytes.NewReader(behind)}
			c := newChunkConn(rs, bufio.NewReader(rs), false)
			reusable := false
			c.begin(func(ok bool) { reusable = ok })
			c.mu.Lock()
			c.ended = true
			c.mu.Unlock()
			c.closeWrite()
			c.close()
			if want := name == "release"; reusable != want || rs.reset == want {
				t.Fatalf("reusable %v, reset %v; want reusable %v", reusable, rs.reset, want)
			}
		})
	}
}
