package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/wire"
)

// An access-role peer may not send an admin-sized request: the length alone
// is refused, naming the role's limit. An admin may still ship a module.
func TestControlBoundsFramesByRole(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	var got []int
	var mu sync.Mutex
	ServeControl(server, gate, func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
		mu.Lock()
		got = append(got, len(req.GetPull().GetArtifact()))
		mu.Unlock()
		return nil
	})
	big := &messages.Envelope{Body: &messages.Envelope_Pull{Pull: &messages.PullServiceRequest{Artifact: make([]byte, 1<<20)}}}

	s := rawStream(t, client, server, wire.ControlProtocol)
	s.Write(binary.AppendUvarint(nil, wire.MaxAccessRoleControlFrame+1))
	e := readReply(t, s)
	if e.GetError().GetCode() != "too_large" || !strings.Contains(e.GetError().GetMessage(), "access role may send requests of at most") {
		t.Fatalf("access-role oversized request: %v", e)
	}
	s.Close()
	err := CallControl(context.Background(), client, server.ID(), big, func(*messages.Envelope) error { return nil })
	var re *wire.RemoteError
	if !errors.As(err, &re) || re.Code != "too_large" {
		t.Fatalf("access-role peer shipped a module: %v", err)
	}

	gate.Set(map[peer.ID]string{client.ID(): "admin"}, map[peer.ID]bool{})
	if err := CallControl(context.Background(), client, server.ID(), big, func(*messages.Envelope) error { return nil }); err != nil {
		t.Fatalf("admin shipping a module: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != 1<<20 {
		t.Fatalf("handler saw %v, want one request with a 1 MiB artifact", got)
	}
}

// A peer with MaxControlStreamsPerPeer requests running (each a `logs -f`,
// say) gets a clear refusal for the next one, and is served again once
// they end.
func TestControlLimitsStreamsPerPeer(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(MaxControlStreamsPerPeer)
	ServeControl(server, gate, func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
		if req.GetCatalogInspect() != nil { // a request that runs until released
			running.Done()
			<-release
		}
		return nil
	})
	hold := &messages.Envelope{Body: &messages.Envelope_CatalogInspect{CatalogInspect: &messages.CatalogInspect{ServiceId: "x"}}}
	held := make(chan error, MaxControlStreamsPerPeer)
	for range MaxControlStreamsPerPeer {
		go func() {
			held <- CallControl(context.Background(), client, server.ID(), hold, func(*messages.Envelope) error { return nil })
		}()
	}
	running.Wait()
	catalog := &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}
	err := CallControl(context.Background(), client, server.ID(), catalog, func(*messages.Envelope) error { return nil })
	var re *wire.RemoteError
	if !errors.As(err, &re) || re.Code != "busy" || !strings.Contains(re.Message, fmt.Sprintf("%d of your requests are already running", MaxControlStreamsPerPeer)) {
		t.Fatalf("request past the limit: %v", err)
	}
	close(release)
	for range MaxControlStreamsPerPeer {
		if err := <-held; err != nil {
			t.Fatalf("a held request: %v", err)
		}
	}
	if err := CallControl(context.Background(), client, server.ID(), catalog, func(*messages.Envelope) error { return nil }); err != nil {
		t.Fatalf("a request once the held ones ended: %v", err)
	}
}

// shortControlTimers makes keepalives and the idle timeout fast for a test.
func shortControlTimers(t *testing.T) {
	ka, wr, idle := keepaliveInterval, replyWriteTimeout, callIdleTimeout
	keepaliveInterval, replyWriteTimeout, callIdleTimeout = 50*time.Millisecond, 2*time.Second, time.Second
	t.Cleanup(func() { keepaliveInterval, replyWriteTimeout, callIdleTimeout = ka, wr, idle })
}

// A follow ends on the serving node when the controller leaves, although
// the follow itself has nothing to send.
func TestControlFollowEndsWhenCallerLeaves(t *testing.T) {
	shortControlTimers(t)
	client, server, gate := trustedPair(t, "admin")
	started, ended := make(chan struct{}), make(chan struct{})
	ServeControl(server, gate, func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
		close(started)
		<-ctx.Done() // a quiet `logs -f`
		close(ended)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	callDone := make(chan error, 1)
	go func() {
		callDone <- CallControl(ctx, client, server.ID(), &messages.Envelope{Body: &messages.Envelope_Logs{Logs: &messages.LogsRequest{Name: "svc", Follow: true}}}, func(*messages.Envelope) error { return nil })
	}()
	<-started
	cancel()
	if err := <-callDone; err == nil {
		t.Fatal("a cancelled call reported success")
	}
	testutil.WaitFor(t, 10*time.Second, "the follow to end on the serving node", func() error {
		select {
		case <-ended:
			return nil
		default:
			return errors.New("the handler still runs for a controller that left")
		}
	})
}

// A quiet exchange outlives the caller's idle timeout many times over while
// keepalives flow, and ends normally.
func TestControlQuietCallIsNotCut(t *testing.T) {
	shortControlTimers(t)
	client, server, gate := trustedPair(t, "admin")
	release := make(chan struct{})
	ServeControl(server, gate, func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
		<-release
		return reply(&messages.Envelope{Body: &messages.Envelope_LogChunk{LogChunk: &messages.LogChunk{Data: []byte("late line\n")}}})
	})
	callDone := make(chan error, 1)
	var got []byte
	go func() {
		callDone <- CallControl(context.Background(), client, server.ID(), &messages.Envelope{Body: &messages.Envelope_Logs{Logs: &messages.LogsRequest{Follow: true}}}, func(e *messages.Envelope) error {
			got = append(got, e.GetLogChunk().GetData()...)
			return nil
		})
	}()
	// Five idle timeouts' worth of keepalives: the call would have been cut
	// long before if anything but the peer's silence could end it. (An idle
	// timeout of 20 keepalives leaves room for a loaded machine's stalls.)
	from := keepalivesSent.Load()
	perTimeout := int64(callIdleTimeout / keepaliveInterval)
	testutil.WaitFor(t, 30*time.Second, "keepalives over five idle timeouts", func() error {
		select {
		case err := <-callDone:
			t.Fatalf("the quiet call ended early: %v", err)
		default:
		}
		if n := keepalivesSent.Load() - from; n < 5*perTimeout {
			return fmt.Errorf("%d keepalives sent", n)
		}
		return nil
	})
	close(release)
	if err := <-callDone; err != nil || string(got) != "late line\n" {
		t.Fatalf("call: %v, got %q", err, got)
	}
}

// A peer that stops answering (no frames, no keepalives) ends the call with
// words saying so, instead of hanging the controller.
func TestControlCallEndsWhenPeerGoesSilent(t *testing.T) {
	shortControlTimers(t)
	client, server, _ := trustedPair(t, "admin")
	release := make(chan struct{})
	defer close(release)
	server.SetStreamHandler(wire.ControlProtocol, func(s network.Stream) {
		var req messages.Envelope
		wire.ReadFrame(bufio.NewReader(s), &req, wire.MaxControlFrame)
		<-release // holds the stream and says nothing
		s.Reset()
	})
	err := CallControl(context.Background(), client, server.ID(), &messages.Envelope{Body: &messages.Envelope_List{List: &messages.ListServicesRequest{}}}, func(*messages.Envelope) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not even a keepalive") {
		t.Fatalf("a silent peer: %v", err)
	}
}

// echoService is a TCP echo server on loopback that half-closes at EOF.
func echoService(t testing.TB) string {
	return testutil.ServeTCP(t, func(c net.Conn) { io.Copy(c, c); c.(*net.TCPConn).CloseWrite(); c.Close() })
}

// One trusted peer holds 300 access streams at once, four times libp2p's
// default of 75 per peer and protocol, and every one carries bytes.
func TestTrustedPeerHoldsManyAccessStreams(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	addr := echoService(t)
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return addr, nil }, t.Logf)
	const n = 300
	streams := make([]access.HalfCloser, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := access.Open(ctx, client, server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			streams[i] = st
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, st := range streams { // all open at once; each still works
		msg := fmt.Sprintf("stream %d", i)
		st.Write([]byte(msg))
		st.CloseWrite()
		back, err := io.ReadAll(st)
		if err != nil || string(back) != msg {
			t.Fatalf("%s: echo %q, %v", msg, back, err)
		}
		st.Close()
	}
}

// When a peer's stream limit is reached, the refusal says so (and wraps
// wire.ErrStreamLimit, which the access forwarder answers with a 503), instead
// of libp2p's bare reset that read as "bad frame length".
func TestStreamLimitRefusalIsNamed(t *testing.T) {
	const limit = 8
	trustedPeerStreams = limit
	server, gate := newTestHost(t) // the serving node has the small limit
	trustedPeerStreams = wire.TrustedPeerStreams
	client, clientGate := newTestHost(t)
	trustEachOther(client, clientGate, server, gate, "access")
	addr := echoService(t)
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return addr, nil }, t.Logf)
	var open []access.HalfCloser
	defer func() {
		for _, st := range open {
			st.Close()
		}
	}()
	var err error
	for range limit + 1 {
		var st access.HalfCloser
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err = access.Open(ctx, client, server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
		cancel()
		if err != nil {
			break
		}
		open = append(open, st)
	}
	if err == nil {
		t.Fatalf("%d streams opened past a limit of %d", len(open), limit)
	}
	if !errors.Is(err, wire.ErrStreamLimit) || !strings.Contains(err.Error(), "the peer refused the stream, it has as many open as it allows") {
		t.Fatalf("refusal at the limit: %v", err)
	}
	t.Logf("refusal: %v", err)
	if strings.Contains(err.Error(), "bad frame length") {
		t.Fatalf("misleading refusal: %v", err)
	}
}

// The reported attack: an access-role peer opens 24 control streams, each
// announcing a 64 MiB frame and sending a few bytes. Each is refused on its
// length, and the node allocates a few KiB for them, not 24 × 64 MiB.
func TestAccessRolePeerCannotMakeNodeHoldAnnouncedFrames(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	ServeControl(server, gate, echoControl)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const streams = 24
	codes := map[string]int{}
	for range streams {
		s := rawStream(t, client, server, wire.ControlProtocol)
		s.Write(append(binary.AppendUvarint(nil, wire.MaxControlFrame), bytes.Repeat([]byte{1}, 10)...))
		codes[readReply(t, s).GetError().GetCode()]++
		s.Close()
	}
	runtime.ReadMemStats(&after)
	if codes["too_large"]+codes["busy"] != streams {
		t.Fatalf("replies %v, want every stream refused", codes)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("%d refused streams made the node allocate %d MiB", streams, got>>20)
	}
}
