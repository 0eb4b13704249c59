package recordbatch

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/sec"

	"github.com/fungi-go/fungi/internal/testutil"
)

// streamConn is a socket with the whole stream already queued: a read
// takes as much as it asks for, as a read of a full receive queue does.
type streamConn struct {
	net.Conn
	rest  []byte
	reads int
}

func (s *streamConn) Read(p []byte) (int, error) {
	s.reads++
	if len(s.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// crypto/tls reads a record header, then the record, each with a read
// of what it still needs: with the stream queued, the socket is read once
// per readBatch bytes, not once per record, and every byte comes out in
// order whatever the sizes asked for.
func TestReadsTakeTheSocketABatchAtATime(t *testing.T) {
	stream := make([]byte, 1<<20)
	for i := range stream {
		stream[i] = byte(i * 7)
	}
	sock := &streamConn{rest: stream}
	h := &heldConn{Conn: sock, batchReads: true}
	var got []byte
	rng := rand.New(rand.NewPCG(1, 2))
	for len(got) < len(stream) {
		ask := 5 // a record header
		if rng.IntN(2) == 0 {
			ask = 1 + rng.IntN(16<<10+256) // a record, or what is left of it
		}
		p := make([]byte, ask)
		n, err := h.Read(p)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, p[:n]...)
	}
	if !bytes.Equal(got, stream) {
		t.Fatal("the bytes came out in another order")
	}
	if want := (len(stream) + readBatch - 1) / readBatch; sock.reads > want {
		t.Errorf("%d socket reads for %d bytes; a batch of %d a read is %d", sock.reads, len(stream), readBatch, want)
	}
	if h.read != nil {
		t.Error("the batch buffer is still held with nothing left in it")
	}
	if n, err := h.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("at the end: %d, %v; want 0, EOF", n, err)
	}
	if h.read != nil {
		t.Error("the batch buffer is held after a read that brought nothing")
	}
}

// A read that asks for a batch or more goes to the socket as it is.
func TestALargeReadGoesStraightToTheSocket(t *testing.T) {
	sock := &streamConn{rest: make([]byte, 2*readBatch)}
	h := &heldConn{Conn: sock, batchReads: true}
	if n, err := h.Read(make([]byte, 2*readBatch)); n != 2*readBatch || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if sock.reads != 1 || h.read != nil {
		t.Errorf("%d socket reads, buffer held %v; want 1 read into the caller's buffer", sock.reads, h.read != nil)
	}
}

// On a connection that is not a socket (a stream to a relay) a read is
// no syscall, and a batch would only copy the bytes once more.
func TestReadsOffASocketAreNotBatched(t *testing.T) {
	sock := &streamConn{rest: make([]byte, 1000)}
	h := &heldConn{Conn: sock}
	for range 3 {
		if n, err := h.Read(make([]byte, 100)); n != 100 || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
	}
	if sock.reads != 3 || h.read != nil {
		t.Errorf("%d reads of the connection for 3 reads, buffer held %v; want each read passed through", sock.reads, h.read != nil)
	}
}

// secure batches reads on a socket only.
func TestSecureBatchesReadsOnSocketsOnly(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tcp, err := net.Dial("tcp", testutil.ServeTCP(t, func(c net.Conn) { c.Close() }))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for _, c := range []struct {
		conn net.Conn
		want bool
	}{{a, false}, {tcp, true}} {
		var held *heldConn
		secure(c.conn, func(h net.Conn) (sec.SecureConn, error) {
			held = h.(*heldConn)
			return nil, errors.New("no handshake here")
		})
		if held.batchReads != c.want {
			t.Errorf("%T: batchReads %v, want %v", c.conn, held.batchReads, c.want)
		}
	}
}
