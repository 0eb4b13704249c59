package yamux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Tests of the fork's delivery from the receive loop (Stream.SetDeliver).

// deliverPair opens a stream from client to server and returns both ends.
func deliverPair(t *testing.T) (cs, ss *Stream) {
	t.Helper()
	conf := testConfNoKeepAlive()
	// net.Pipe has no buffer: a writer waits for the receive loop, and
	// on a busy machine a garbage collection can outlast the 350 ms of
	// the other tests.
	conf.ConnectionWriteTimeout = 10 * time.Second
	client, server := testClientServerConfig(conf)
	t.Cleanup(func() { client.Close(); server.Close() })
	cs, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	ss, err = server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := ss.Read(got); err != nil || string(got) != "hello" {
		t.Fatalf("first read %q, %v", got, err)
	}
	return cs, ss
}

// sink is the destination the stream's reader and its deliver function
// both write to, as the access bridge's local socket is.
type sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (k *sink) write(b []byte) {
	k.mu.Lock()
	k.buf.Write(b)
	k.mu.Unlock()
}

func (k *sink) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.buf.Len()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func parked(s *Stream) bool {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	return s.readerParked
}

// readInto is the bridge: it reads the stream and writes what it read to
// k, until the stream ends; reads counts the reads that returned data.
func readInto(s *Stream, k *sink, reads *int, done chan<- error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			*reads++
			k.write(buf[:n])
		}
		if err != nil {
			done <- err
			return
		}
	}
}

func TestDeliverSkipsTheWaitingReader(t *testing.T) {
	cs, ss := deliverPair(t)
	var delivered, read sink
	ss.SetDeliver(math.MaxUint32, func(b []byte) int { delivered.write(b); return len(b) })
	reads := 0
	done := make(chan error, 1)
	go readInto(ss, &read, &reads, done)
	waitFor(t, "the reader to wait", func() bool { return parked(ss) })

	want := pattern(100)
	for left := want; len(left) > 0; {
		n := chunkSize(len(left))
		if _, err := cs.Write(left[:n]); err != nil {
			t.Fatal(err)
		}
		left = left[n:]
	}
	waitFor(t, "every byte to be delivered", func() bool { return delivered.len() == len(want) })
	if !bytes.Equal(delivered.buf.Bytes(), want) {
		t.Fatal("the delivered bytes differ from those sent")
	}
	if read.len() != 0 || reads != 0 {
		t.Fatalf("the reader was handed %d bytes in %d reads, want none", read.len(), reads)
	}

	// Without a deliver function the reader gets the data again.
	ss.SetDeliver(0, nil)
	cs.Write([]byte("tail"))
	cs.Close()
	<-done
	if got := read.buf.String(); got != "tail" {
		t.Fatalf("the reader got %q, want %q", got, "tail")
	}
}

// A frame larger than the piece size given with the deliver function is
// offered in pieces of that size, and while the reader waits none of it
// reaches the reader.
func TestDeliverOffersLargeFramesInPieces(t *testing.T) {
	cs, ss := deliverPair(t)
	var delivered, read sink
	var offered []int
	ss.SetDeliver(100, func(b []byte) int {
		offered = append(offered, len(b))
		delivered.write(b)
		return len(b)
	})
	reads := 0
	done := make(chan error, 1)
	go readInto(ss, &read, &reads, done)
	waitFor(t, "the reader to wait", func() bool { return parked(ss) })

	small, large := pattern(100)[:60], pattern(2000)[:1050]
	if _, err := cs.Write(small); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the small frame to be delivered", func() bool { return delivered.len() == len(small) })
	if _, err := cs.Write(large); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the large frame to be delivered", func() bool { return delivered.len() == len(small)+len(large) })
	cs.Close()
	<-done
	want := []int{60, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 50}
	if fmt.Sprint(offered) != fmt.Sprint(want) {
		t.Fatalf("deliver was offered pieces of %v bytes, want %v", offered, want)
	}
	if !bytes.Equal(delivered.buf.Bytes(), append(append([]byte(nil), small...), large...)) {
		t.Fatal("the delivered bytes differ from those sent")
	}
	if read.len() != 0 || reads != 0 {
		t.Fatalf("the reader was handed %d bytes in %d reads, want none", read.len(), reads)
	}
}

// A reader whose deadline passes while a frame is still arriving leaves
// its wait on time: the receive loop does not hold up the reader while it
// waits for the rest of the frame. The bytes delivered before and those
// buffered after reach the destination in order.
func TestDeliverLetsTheReaderLeaveMidFrame(t *testing.T) {
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 10 * time.Second
	peer, conn := net.Pipe()
	server, _ := Server(conn, conf, nil)
	t.Cleanup(func() { server.Close(); peer.Close() })
	go io.Copy(io.Discard, peer) // the server's ACK and window updates
	syn := encode(typeWindowUpdate, flagSYN, 1, 0)
	if _, err := peer.Write(syn[:]); err != nil {
		t.Fatal(err)
	}
	ss, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	var out sink
	ss.SetDeliver(512, func(b []byte) int { out.write(b); return len(b) })
	ss.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		n, err := ss.Read(buf)
		out.write(buf[:n])
		readErr <- err
	}()
	waitFor(t, "the reader to wait", func() bool { return parked(ss) })

	frame := pattern(2000)[:8<<10]
	hdr := encode(typeData, 0, 1, uint32(len(frame)))
	if _, err := peer.Write(append(hdr[:], frame[:1024]...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first pieces to be delivered", func() bool { return out.len() == 1024 })
	// The rest of the frame has not been sent: the read must end by
	// its deadline all the same.
	var rerr error
	waitFor(t, "the read to end at its deadline", func() bool {
		select {
		case rerr = <-readErr:
			return true
		default:
			return false
		}
	})
	if !errors.Is(rerr, ErrTimeout) {
		t.Fatalf("the read ended with %v, want a timeout", rerr)
	}
	if _, err := peer.Write(frame[1024:]); err != nil {
		t.Fatal(err)
	}
	ss.SetReadDeadline(time.Time{})
	buf := make([]byte, 64<<10)
	for out.len() < len(frame) {
		n, err := ss.Read(buf)
		out.write(buf[:n])
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", out.len(), len(frame), err)
		}
	}
	if !bytes.Equal(out.buf.Bytes(), frame) {
		t.Fatal("the frame's bytes arrived out of order")
	}
}

// Deliver takes all of some frames, part of others and none of the rest;
// whatever it leaves reaches the reader, in order, and the window keeps
// opening, whether the bytes went through the buffer or not.
func TestDeliverPartlyKeepsOrderAndWindow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		piece uint32
		take  func(i, n int) int
	}{
		{"all", math.MaxUint32, func(i, n int) int { return n }},
		{"mixed", math.MaxUint32, func(i, n int) int { return []int{n, n / 2, 0, n, 1}[i%5] }},
		{"mixed pieces", 1000, func(i, n int) int { return []int{n, n / 2, n, 0, n, n, 1}[i%7] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, ss := deliverPair(t)
			// Several times the 16 MiB maximum window, in frames of up
			// to the 64 KiB a Write sends at once.
			want := bytes.Repeat(pattern(600), 2000)
			var out sink
			out.buf.Grow(len(want))
			calls := 0
			ss.SetDeliver(tc.piece, func(b []byte) int {
				n := tc.take(calls, len(b))
				calls++
				out.write(b[:n])
				return n
			})
			reads := 0
			done := make(chan error, 1)
			go readInto(ss, &out, &reads, done)

			go func() {
				for left := want; len(left) > 0; {
					n := 64<<10 - len(left)%7
					if n > len(left) {
						n = len(left)
					}
					if _, err := cs.Write(left[:n]); err != nil {
						return
					}
					left = left[n:]
				}
				cs.Close()
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("stalled after %d of %d bytes", out.len(), len(want))
			}
			if !bytes.Equal(out.buf.Bytes(), want) {
				t.Fatalf("got %d bytes, not the %d sent in order (read: %v)", out.len(), len(want), err)
			}
			if calls == 0 {
				t.Fatal("deliver was never called")
			}
			t.Logf("%d MiB: %d deliveries, %d reads", len(want)>>20, calls, reads)
		})
	}
}
