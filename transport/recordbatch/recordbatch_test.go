package recordbatch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/fungi-go/fungi/transport/recordbatch"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// SyscallConn is the socket's: the batching side treats the counted
// connection as the socket it is.
func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

func newTLS(t *testing.T) (sec.SecureTransport, peer.ID) {
	t.Helper()
	priv, id := transporttest.Key(t)
	tr, err := libp2ptls.New(libp2ptls.ID, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr, id
}

// securedPair is a loopback TCP connection secured by the batching
// transport on the dialling side and by plain libp2p TLS on the other:
// the batching side must speak to any libp2p peer.
func securedPair(t *testing.T) (client sec.SecureConn, server sec.SecureConn, socket *countingConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	clientTLS, _ := newTLS(t)
	serverTLS, serverID := newTLS(t)
	batching := recordbatch.New(clientTLS)
	if batching.ID() != libp2ptls.ID {
		t.Fatalf("ID = %s, want the wrapped transport's %s", batching.ID(), libp2ptls.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		c   sec.SecureConn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		c, err := serverTLS.SecureInbound(ctx, raw, "")
		accepted <- result{c, err}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	socket = &countingConn{Conn: raw}
	client, err = batching.SecureOutbound(ctx, socket, serverID)
	if err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c, socket
}

func TestLargeWriteLeavesInFewSocketWrites(t *testing.T) {
	client, server, socket := securedPair(t)
	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(server, int64(len(payload))))
		got <- b
	}()
	before := socket.writes.Load()
	if n, err := client.Write(payload); err != nil || n != len(payload) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	writes := socket.writes.Load() - before
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("the server read %d bytes, not the %d written", len(b), len(payload))
	}
	// 64 records of 16 KiB, at most 136 KiB per socket write: 8 writes.
	if writes > 9 {
		t.Errorf("1 MiB took %d socket writes; a write per 16 KiB record would be 64, batched ≤ 9", writes)
	}
	// A small write is one record and passes straight through.
	before = socket.writes.Load()
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if w := socket.writes.Load() - before; w != 1 {
		t.Errorf("a 4-byte write took %d socket writes, want 1", w)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// Writers of small and large messages at once: every record must reach
// the socket in the order TLS sealed it, or the peer fails to open it.
func TestConcurrentWritesKeepRecordOrder(t *testing.T) {
	client, server, _ := securedPair(t)
	const writers, perWriter = 4, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				size := 100 + (w*7919+i*104729)%(70<<10) // both sides of a record
				msg := make([]byte, 12+size)
				binary.BigEndian.PutUint32(msg[0:], uint32(w))
				binary.BigEndian.PutUint32(msg[4:], uint32(i))
				binary.BigEndian.PutUint32(msg[8:], uint32(size))
				for j := range size {
					msg[12+j] = byte(w + i + j)
				}
				if _, err := client.Write(msg); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	for range writers * perWriter {
		var hdr [12]byte
		if _, err := io.ReadFull(server, hdr[:]); err != nil {
			t.Fatalf("reading a message header: %v (records out of order?)", err)
		}
		w, i, size := int(binary.BigEndian.Uint32(hdr[0:])), int(binary.BigEndian.Uint32(hdr[4:])), int(binary.BigEndian.Uint32(hdr[8:]))
		if w >= writers || i != next[w] {
			t.Fatalf("message %d from writer %d, want %v", i, w, next)
		}
		next[w]++
		body := make([]byte, size)
		if _, err := io.ReadFull(server, body); err != nil {
			t.Fatal(err)
		}
		for j, b := range body {
			if b != byte(w+i+j) {
				t.Fatalf("writer %d message %d: byte %d is %d", w, i, j, b)
			}
		}
	}
	wg.Wait()
}

func TestWriteToAClosedSocketFails(t *testing.T) {
	client, _, socket := securedPair(t)
	socket.Conn.Close()
	big := make([]byte, 100<<10)
	for i := range 2 {
		if _, err := client.Write(big); err == nil {
			t.Fatalf("write %d after the socket closed succeeded", i)
		} else if errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// The batching side reads what a plain libp2p TLS peer sends, large
// records and small ones, through its batched socket reads.
func TestBatchedReadsDeliverEveryRecord(t *testing.T) {
	client, server, _ := securedPair(t)
	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		for _, b := range [][]byte{payload, []byte("ping"), payload[:100<<10]} {
			if _, err := server.Write(b); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	got := make([]byte, len(payload)+4+100<<10)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, payload...), "ping"...), payload[:100<<10]...)
	if !bytes.Equal(got, want) {
		t.Fatal("the batching side read other bytes than the peer sent")
	}
}
