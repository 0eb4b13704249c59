package yamux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the lazy SYN and ACK (lazy.go).

// frame is one frame a session wrote, as its header says.
type frame struct {
	typ    uint8
	flags  uint16
	id     uint32
	length uint32
}

func (f frame) String() string {
	names := map[uint8]string{typeData: "data", typeWindowUpdate: "window", typePing: "ping", typeGoAway: "goaway"}
	var fl []string
	for _, x := range []struct {
		bit  uint16
		name string
	}{{flagSYN, "SYN"}, {flagACK, "ACK"}, {flagFIN, "FIN"}, {flagRST, "RST"}} {
		if f.flags&x.bit != 0 {
			fl = append(fl, x.name)
		}
	}
	return fmt.Sprintf("%s[%s]%d", names[f.typ], strings.Join(fl, "|"), f.length)
}

// wireLog is a connection that records the frames written to it.
type wireLog struct {
	net.Conn
	mu     sync.Mutex
	buf    []byte
	frames []frame
}

// Write records b before writing it, so the frames are in the log by the
// time the peer can see them (the session writes whole frames).
func (w *wireLog) Write(b []byte) (int, error) {
	w.record(b)
	return w.Conn.Write(b)
}

func (w *wireLog) record(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for len(w.buf) >= headerSize {
		h := header(w.buf[:headerSize])
		size := headerSize
		if h.MsgType() == typeData {
			size += int(h.Length())
		}
		if len(w.buf) < size {
			break
		}
		w.frames = append(w.frames, frame{h.MsgType(), h.Flags(), h.StreamID(), h.Length()})
		w.buf = w.buf[size:]
	}
}

// of is the frames written for stream id, as text.
func (w *wireLog) of(id uint32) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, f := range w.frames {
		if f.id == id {
			out = append(out, f.String())
		}
	}
	return strings.Join(out, " ")
}

// spans counts the memory spans a session began and ended.
type spans struct{ begun, done atomic.Int32 }

type countedSpan struct {
	s    *spans
	once sync.Once
}

func (c *countedSpan) ReserveMemory(int, uint8) error { return nil }
func (c *countedSpan) ReleaseMemory(int)              {}
func (c *countedSpan) Done()                          { c.once.Do(func() { c.s.done.Add(1) }) }

func (s *spans) new() (MemoryManager, error) {
	s.begun.Add(1)
	return &countedSpan{s: s}, nil
}

func (s *spans) open() int32 { return s.begun.Load() - s.done.Load() }

// lazyRig is a client and a server session over net.Pipe, each
// connection's frames recorded and each session's spans counted.
type lazyRig struct {
	client, server *Session
	cpipe          *pipeConn
	cwire, swire   *wireLog
	cspans, sspans *spans
	accepted       chan *Stream
	lazyCtx        context.Context
}

func newLazyRig(t *testing.T, conf *Config) *lazyRig {
	t.Helper()
	c1, c2 := testConn()
	r := &lazyRig{
		cpipe: c1.(*pipeConn),
		cwire: &wireLog{Conn: c1}, swire: &wireLog{Conn: c2},
		cspans: &spans{}, sspans: &spans{},
		accepted: make(chan *Stream, 16),
		lazyCtx:  WithLazySYN(context.Background()),
	}
	r.client, _ = Client(r.cwire, conf, r.cspans.new)
	r.server, _ = Server(r.swire, conf, r.sspans.new)
	t.Cleanup(func() { r.client.Close(); r.server.Close() })
	go func() {
		for {
			s, err := r.server.AcceptStream()
			if err != nil {
				close(r.accepted)
				return
			}
			r.accepted <- s
		}
	}()
	waitRTTMeasured(t, r.client, r.server)
	return r
}

func (r *lazyRig) accept(t *testing.T) *Stream {
	t.Helper()
	select {
	case s := <-r.accepted:
		if s == nil {
			t.Fatal("the server's session ended")
		}
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the server accepted no stream")
	}
	return nil
}

func (r *lazyRig) open(t *testing.T, ctx context.Context) *Stream {
	t.Helper()
	s, err := r.client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slotsHeld is how many of the client's in-flight SYN slots are taken,
// and how many streams it tracks as in flight.
func (r *lazyRig) slotsHeld() (slots, inflight int) {
	r.client.streamLock.Lock()
	defer r.client.streamLock.Unlock()
	return len(r.client.synCh), len(r.client.inflight)
}

func (r *lazyRig) waitSlotsFree(t *testing.T, after string) {
	t.Helper()
	waitFor(t, "the client's in-flight SYN slot to be freed after "+after, func() bool {
		slots, inflight := r.slotsHeld()
		return slots == 0 && inflight == 0
	})
}

func (r *lazyRig) waitSpansDone(t *testing.T, after string) {
	t.Helper()
	waitFor(t, "the client's stream spans to end after "+after, func() bool { return r.cspans.open() == 0 })
}

func writeAll(t *testing.T, s *Stream, msg string) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func readN(t *testing.T, s *Stream, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// A lazily opened stream's SYN rides on its first data frame and the
// acceptor's ACK on its first: one frame each way where there were two, as
// fungi's warm access streams exchange them (the opener writes the
// protocol selection, the acceptor writes first, then reads).
func TestLazySYNRidesOnTheFirstFrames(t *testing.T) {
	r := newLazyRig(t, testConfNoKeepAlive())
	s := r.open(t, r.lazyCtx)
	if !s.LazyOpen() {
		t.Fatal("a stream opened WithLazySYN says it is not lazy")
	}
	writeAll(t, s, "select")
	ss := r.accept(t)
	if !ss.LazyOpen() {
		t.Fatal("a stream whose SYN came on a data frame says it is not lazy")
	}
	writeAll(t, ss, "echo")
	readN(t, ss, "select")
	readN(t, s, "echo")
	if got, want := r.cwire.of(s.id), "data[SYN]6"; got != want {
		t.Errorf("the opener wrote %q for the stream, want %q", got, want)
	}
	if got, want := r.swire.of(s.id), "data[ACK]4"; got != want {
		t.Errorf("the acceptor wrote %q for the stream, want %q", got, want)
	}
	// The reader got the echo, so the ACK before it was processed.
	if slots, inflight := r.slotsHeld(); slots != 0 || inflight != 0 {
		t.Errorf("after the ACK, %d in-flight SYN slots held, %d streams in flight", slots, inflight)
	}
	s.Close()
	ss.Close()
	r.waitSpansDone(t, "both sides closed")
}

// Without the marker nothing changes: the SYN and the ACK each go on a
// window update of their own before any data, as upstream sends them.
func TestWithoutLazySYNTheOpenIsUpstreams(t *testing.T) {
	r := newLazyRig(t, testConfNoKeepAlive())
	s := r.open(t, context.Background())
	if s.LazyOpen() {
		t.Fatal("a stream opened without the marker says it is lazy")
	}
	writeAll(t, s, "select")
	ss := r.accept(t)
	if ss.LazyOpen() {
		t.Fatal("a stream whose SYN came on a window update says it is lazy")
	}
	writeAll(t, ss, "echo")
	readN(t, ss, "select")
	readN(t, s, "echo")
	if got, want := r.cwire.of(s.id), "window[SYN]0 data[]6"; got != want {
		t.Errorf("the opener wrote %q for the stream, want %q", got, want)
	}
	if got, want := r.swire.of(s.id), "window[ACK]0 data[]4"; got != want {
		t.Errorf("the acceptor wrote %q for the stream, want %q", got, want)
	}
}

// The opener's in-flight SYN slot and its stream's memory span are freed
// on every way a lazy stream ends or gets its ACK.
func TestLazySYNFreesTheSlotAndSpan(t *testing.T) {
	conf := testConfNoKeepAlive()

	t.Run("opener resets before any frame", func(t *testing.T) {
		r := newLazyRig(t, conf)
		s := r.open(t, r.lazyCtx)
		if slots, _ := r.slotsHeld(); slots != 1 {
			t.Fatalf("a lazy open holds %d in-flight SYN slots, want 1", slots)
		}
		s.Reset()
		r.waitSlotsFree(t, "the reset")
		r.waitSpansDone(t, "the reset")
		// A stream opened after it gets across; the reset one sent
		// nothing, so the peer never accepted it.
		s2 := r.open(t, r.lazyCtx)
		writeAll(t, s2, "x")
		if ss := r.accept(t); ss.id != s2.id {
			t.Fatalf("the server accepted stream %d, want %d", ss.id, s2.id)
		}
		if got := r.cwire.of(s.id); got != "" {
			t.Errorf("a lazy stream reset before any frame wrote %q", got)
		}
	})

	t.Run("opener closes before any frame", func(t *testing.T) {
		r := newLazyRig(t, conf)
		s := r.open(t, r.lazyCtx)
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		ss := r.accept(t)
		if b, err := io.ReadAll(ss); err != nil || len(b) != 0 {
			t.Fatalf("the peer read %q, %v from a stream closed before any write", b, err)
		}
		if got, want := r.cwire.of(s.id), "window[SYN|FIN]0"; got != want {
			t.Errorf("the opener wrote %q, want %q", got, want)
		}
		ss.Close()
		r.waitSlotsFree(t, "the close")
		s.Close()
		r.waitSpansDone(t, "both sides closed")
	})

	t.Run("acceptor resets without writing", func(t *testing.T) {
		r := newLazyRig(t, conf)
		s := r.open(t, r.lazyCtx)
		writeAll(t, s, "x")
		ss := r.accept(t)
		ss.Reset()
		r.waitSlotsFree(t, "the peer's reset")
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("read after the peer's reset: %v", err)
		}
		if got, want := r.swire.of(s.id), "window[RST]0"; got != want {
			t.Errorf("the acceptor wrote %q, want %q", got, want)
		}
		r.waitSpansDone(t, "the peer's reset")
	})

	t.Run("acceptor closes without writing", func(t *testing.T) {
		r := newLazyRig(t, conf)
		s := r.open(t, r.lazyCtx)
		writeAll(t, s, "x")
		ss := r.accept(t)
		ss.Close()
		r.waitSlotsFree(t, "the peer's close")
		if b, err := io.ReadAll(s); err != nil || len(b) != 0 {
			t.Fatalf("read %q, %v after the peer's close", b, err)
		}
		if got, want := r.swire.of(s.id), "window[ACK|FIN]0"; got != want {
			t.Errorf("the acceptor wrote %q, want %q", got, want)
		}
		s.Close()
		r.waitSpansDone(t, "both sides closed")
	})

	t.Run("session ends", func(t *testing.T) {
		r := newLazyRig(t, conf)
		r.open(t, r.lazyCtx)
		r.client.Close()
		r.waitSpansDone(t, "the session ended")
	})

	t.Run("first frame not queued", func(t *testing.T) {
		// The first write's deadline has passed: its frame is never
		// queued, and the SYN goes on the next one instead.
		r := newLazyRig(t, conf)
		s := r.open(t, r.lazyCtx)
		s.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := s.Write([]byte("lost")); !errors.Is(err, ErrTimeout) {
			t.Fatalf("write past its deadline: %v", err)
		}
		s.SetWriteDeadline(time.Time{})
		writeAll(t, s, "x")
		ss := r.accept(t)
		readN(t, ss, "x")
		if got, want := r.cwire.of(s.id), "data[SYN]1"; got != want {
			t.Errorf("the opener wrote %q, want %q", got, want)
		}
		ss.Close()
		r.waitSlotsFree(t, "the peer's close")
	})
}

// closeWriteLazy and firstWriteLazy name the goroutines of
// TestLazySYNFramesWaitForTheSYN in a stack dump.
func closeWriteLazy(s *Stream, done chan<- error) { done <- s.CloseWrite() }

func firstWriteLazy(s *Stream, done chan<- error) {
	_, err := s.Write([]byte("first"))
	done <- err
}

// goroutineBlockedIn reports whether a goroutine whose stack holds fn is
// blocked (waiting on a lock or a channel) inside where.
func goroutineBlockedIn(fn, where string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "."+fn+"(") && strings.Contains(g, where) &&
			(strings.Contains(g, "[select") || strings.Contains(g, "[sync.Mutex.Lock") || strings.Contains(g, "[semacquire") || strings.Contains(g, "[chan send")) {
			return true
		}
	}
	return false
}

// A frame sent while the frame carrying a lazy stream's SYN is still being
// handed over waits for it, and when that frame is never queued (its write
// deadline passed while the queue was full) the waiting frame carries the
// SYN: the peer learns of the stream from it rather than dropping a FIN
// for a stream it does not know.
func TestLazySYNFramesWaitForTheSYN(t *testing.T) {
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = time.Minute
	r := newLazyRig(t, conf)
	filler := r.open(t, context.Background())
	fs := r.accept(t)
	go io.Copy(io.Discard, fs)

	// Block the connection and fill the send queue behind it.
	r.cpipe.BlockWrites()
	unblocked := false
	defer func() {
		if !unblocked {
			r.cpipe.UnblockWrites()
		}
	}()
	for range cap(r.client.sendCh) + 4 {
		go filler.Write([]byte{1})
	}
	waitFor(t, "the send queue to fill", func() bool { return len(r.client.sendCh) == cap(r.client.sendCh) })

	// The first write takes the SYN and waits for room in the queue (its
	// deadline is nearer than the connection's write timeout, so it does
	// not wait on the connection itself).
	s := r.open(t, r.lazyCtx)
	s.SetWriteDeadline(time.Now().Add(30 * time.Second))
	wrote, closed := make(chan error, 1), make(chan error, 1)
	go firstWriteLazy(s, wrote)
	waitFor(t, "the first write to take the SYN and wait", func() bool {
		return goroutineBlockedIn("firstWriteLazy", "sendMsg")
	})
	go closeWriteLazy(s, closed)
	waitFor(t, "the close to wait", func() bool {
		return goroutineBlockedIn("closeWriteLazy", "CloseWrite")
	})
	// The first write's deadline passes before its frame is queued.
	s.writeDeadline.set(time.Now().Add(-time.Second))
	if err := <-wrote; !errors.Is(err, ErrTimeout) {
		t.Fatalf("the first write: %v, want a timeout", err)
	}
	r.cpipe.UnblockWrites()
	unblocked = true
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	ss := r.accept(t)
	if ss.id != s.id {
		t.Fatalf("the server accepted stream %d, want %d", ss.id, s.id)
	}
	if b, err := io.ReadAll(ss); err != nil || len(b) != 0 {
		t.Fatalf("the peer read %q, %v", b, err)
	}
	if got, want := r.cwire.of(s.id), "window[SYN|FIN]0"; got != want {
		t.Errorf("the opener wrote %q, want %q", got, want)
	}
}
