package yamux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Tests of the fork's direct writes (Session.sendDirect).

// echoPair opens a stream from client to server whose server side echoes.
func echoPair(t *testing.T, conf *Config) (client, server *Session, s *Stream) {
	t.Helper()
	client, server = testClientServerConfig(conf)
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		ss, err := server.AcceptStream()
		if err != nil {
			return
		}
		io.Copy(ss, ss)
		ss.Close()
	}()
	s, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return client, server, s
}

func roundTrip(t *testing.T, s *Stream, msg []byte) {
	t.Helper()
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(s, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, msg) {
		t.Fatalf("echo %q, want %q", back, msg)
	}
}

func TestDirectWritesOnQuietSession(t *testing.T) {
	client, server, s := echoPair(t, testConfNoKeepAlive())
	for i := range 50 {
		roundTrip(t, s, []byte{byte(i), 1, 2, 3})
	}
	// Nearly every data frame went out from its writer on both sides: on
	// net.Pipe the send loop may still hold the lock after writing the
	// stream's SYN, or a frame, when the next write comes.
	if n := client.directWrites.Load(); n < 40 {
		t.Errorf("client wrote %d frames directly, want at least 40", n)
	}
	if n := server.directWrites.Load(); n < 40 {
		t.Errorf("server wrote %d frames directly, want at least 40", n)
	}
}

func TestNearDeadlineWritesQueue(t *testing.T) {
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = time.Minute
	client, _, s := echoPair(t, conf)
	roundTrip(t, s, []byte("warm"))
	before := client.directWrites.Load()
	// Nearer than the connection's write timeout: a direct write could
	// outlast it, so the frame goes through the send loop.
	s.SetWriteDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, s, []byte("near"))
	if n := client.directWrites.Load(); n != before {
		t.Errorf("%d direct writes with a near deadline, want none", n-before)
	}
	// Farther than it: direct again, once the send loop let go of the
	// connection.
	waitQuiet(t, client)
	s.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	roundTrip(t, s, []byte("far"))
	if n := client.directWrites.Load(); n == before {
		t.Error("no direct write with a far deadline")
	}
}

func TestNearDeadlineTimesOutWhileConnBlocked(t *testing.T) {
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = time.Minute
	client, _, s := echoPair(t, conf)
	roundTrip(t, s, []byte("warm"))
	conn := client.conn.(*pipeConn)
	conn.BlockWrites()
	defer conn.UnblockWrites()
	// The send loop is now stuck on the blocked conn; the queue fills and
	// the write must fail at its deadline, not the connection's.
	s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 5*time.Second {
		_, err = s.Write(make([]byte, 1024))
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("write error %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("write timed out after %v, deadline was 200ms", d)
	}
}

// Many streams write concurrently, each waiting for an acknowledgement of
// every chunk, so direct writes and the send loop's take turns: every
// stream's bytes must arrive whole and in order.
func TestDirectAndQueuedKeepOrder(t *testing.T) {
	client, server := testClientServerConfig(testConfNoKeepAlive())
	defer client.Close()
	defer server.Close()
	const streams, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*streams)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range streams {
			ss, err := server.AcceptStream()
			if err != nil {
				errs <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := pattern(rounds)
				got := make([]byte, 0, len(want))
				for left := len(want); left > 0; {
					chunk := make([]byte, chunkSize(left))
					if _, err := io.ReadFull(ss, chunk); err != nil {
						errs <- err
						return
					}
					got = append(got, chunk...)
					left -= len(chunk)
					if _, err := ss.Write([]byte{1}); err != nil {
						errs <- err
						return
					}
				}
				if !bytes.Equal(got, want) {
					errs <- errors.New("a stream's bytes arrived changed or out of order")
				}
			}()
		}
	}()
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := client.OpenStream(context.Background())
			if err != nil {
				errs <- err
				return
			}
			data := pattern(rounds)
			for len(data) > 0 {
				n := chunkSize(len(data))
				if _, err := s.Write(data[:n]); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
					errs <- err
					return
				}
				data = data[n:]
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Under this load most frames queue; the order check is only worth
	// something if some went out directly among them.
	if client.directWrites.Load()+server.directWrites.Load() == 0 {
		t.Error("no direct write on either side")
	}
}

func chunkSize(left int) int {
	if n := 1 + left%700; n < left {
		return n
	}
	return left
}

func pattern(rounds int) []byte {
	var b bytes.Buffer
	for i := range rounds {
		for j := range i%97 + 1 {
			b.WriteByte(byte(i*31 + j))
		}
	}
	return b.Bytes()
}

// failConn fails every write once failing is set.
type failConn struct {
	net.Conn
	mu      sync.Mutex
	failing bool
}

func (f *failConn) Write(b []byte) (int, error) {
	f.mu.Lock()
	failing := f.failing
	f.mu.Unlock()
	if failing {
		return 0, errors.New("broken")
	}
	return f.Conn.Write(b)
}

func TestDirectWriteErrorEndsSession(t *testing.T) {
	c1, c2 := testConn()
	fc := &failConn{Conn: c1}
	client, _ := Client(fc, testConfNoKeepAlive(), nil)
	server, _ := Server(c2, testConfNoKeepAlive(), nil)
	defer client.Close()
	defer server.Close()
	go func() {
		ss, err := server.AcceptStream()
		if err == nil {
			io.Copy(ss, ss)
		}
	}()
	s, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, []byte("ok"))
	waitQuiet(t, client)
	fc.mu.Lock()
	fc.failing = true
	fc.mu.Unlock()
	if _, err := s.Write([]byte("lost")); err == nil {
		t.Fatal("a failed direct write returned no error")
	}
	select {
	case <-client.CloseChan():
	case <-time.After(5 * time.Second):
		t.Fatal("the session lives on after its connection failed")
	}
}

// waitQuiet waits until nothing is queued or being written on s, so the
// next write goes out directly.
func waitQuiet(t *testing.T, s *Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s.queued.Load() == 0 && s.writeLock.TryLock() {
			s.writeLock.Unlock()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the session never went quiet")
		}
		runtime.Gosched()
	}
}

// A stream's SYN, its accept's ACK and both FINs go out from the opening,
// accepting and closing goroutines on a quiet session, not through the
// send loop.
func TestControlFramesDirectOnQuietSession(t *testing.T) {
	client, server := testClientServerConfig(testConfNoKeepAlive())
	t.Cleanup(func() { client.Close(); server.Close() })
	waitRTTMeasured(t, client, server)
	accepted := make(chan *Stream, 1)
	go func() {
		ss, err := server.AcceptStream()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- ss
	}()
	clientBefore, serverBefore := client.directWrites.Load(), server.directWrites.Load()
	s, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := client.directWrites.Load() - clientBefore; n != 1 {
		t.Fatalf("the SYN: %d direct writes, want 1", n)
	}
	ss := <-accepted
	if ss == nil {
		t.Fatal("the server accepted no stream")
	}
	if n := server.directWrites.Load() - serverBefore; n != 1 {
		t.Fatalf("the ACK: %d direct writes, want 1", n)
	}
	waitQuiet(t, client)
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n := client.directWrites.Load() - clientBefore; n != 2 {
		t.Fatalf("the client's FIN: %d direct writes in all, want 2", n)
	}
	// The peer sees each frame as upstream sends it: the stream open, then
	// its end.
	if _, err := io.ReadAll(ss); err != nil {
		t.Fatalf("the server's side after the client's FIN: %v", err)
	}
	waitQuiet(t, server)
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	if n := server.directWrites.Load() - serverBefore; n != 2 {
		t.Fatalf("the server's FIN: %d direct writes in all, want 2", n)
	}
	if _, err := io.ReadAll(s); err != nil {
		t.Fatalf("the client's side after the server's FIN: %v", err)
	}
}

// A SYN whose context's deadline is nearer than the connection's write
// timeout is queued, as upstream does: a direct write could outlast it.
func TestNearDeadlineSYNQueues(t *testing.T) {
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = time.Minute
	client, server := testClientServerConfig(conf)
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		if ss, err := server.AcceptStream(); err == nil {
			ss.Close()
		}
	}()
	waitRTTMeasured(t, client, server)
	before := client.directWrites.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.OpenStream(ctx); err != nil {
		t.Fatal(err)
	}
	if n := client.directWrites.Load() - before; n != 0 {
		t.Fatalf("%d direct writes for a SYN with a near deadline, want none", n)
	}
}

// waitRTTMeasured waits until both sessions measured their round trip (a
// ping each way as a session starts, written by the send loop) and went
// quiet, so nothing but the test's own frames contends for the connection.
func waitRTTMeasured(t *testing.T, sessions ...*Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range sessions {
		for s.RTT() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("a session never measured its round trip")
			}
			runtime.Gosched()
		}
	}
	for _, s := range sessions {
		waitQuiet(t, s)
	}
}
