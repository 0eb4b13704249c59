package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/wire"
)

// Deadlines of the control protocol. An admin's request may carry a module
// and gets longer to arrive than an access-role peer's, which is tiny.
const (
	requestReadTimeout       = 2 * time.Minute
	accessRequestReadTimeout = 30 * time.Second
	requestWriteTimeout      = 2 * time.Minute
)

// MaxControlStreamsPerPeer is how many control requests one peer may have
// running on this node at once; each open `logs -f` holds one. More are
// refused with code "busy" before their request is read.
const MaxControlStreamsPerPeer = 16

// An exchange lives as long as both ends are there, not for a fixed time:
// the serving side sends an empty envelope every keepaliveInterval while
// its handler works (a `logs -f` may be quiet for hours), and a write that
// fails or stalls for replyWriteTimeout means the controller left. The
// calling side gives up when nothing, not even a keepalive, arrived for
// callIdleTimeout. Variables so tests can shorten them.
var (
	keepaliveInterval = 15 * time.Second
	replyWriteTimeout = 30 * time.Second
	callIdleTimeout   = 90 * time.Second
)

// keepalivesSent counts keepalive envelopes written, so tests can wait on
// an exchange outliving the idle timeout without sleeping.
var keepalivesSent atomic.Int64

// ControlHandler answers one request from a peer. reply sends an envelope
// of the answer; the transport adds the request ID and the final mark. ctx
// ends when the caller goes away (its stream closed or reset), so a
// handler that waits (a log follow) must return on ctx.Done.
type ControlHandler func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error

// peerStreams counts the control streams each peer has open.
type peerStreams struct {
	mu   sync.Mutex
	open map[peer.ID]int
}

func (c *peerStreams) acquire(p peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[p] >= MaxControlStreamsPerPeer {
		return false
	}
	c.open[p]++
	return true
}

func (c *peerStreams) release(p peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[p]--; c.open[p] <= 0 {
		delete(c.open, p)
	}
}

func errorEnvelope(code, msg string) *messages.Envelope {
	return &messages.Envelope{Final: true, Body: &messages.Envelope_Error{Error: &messages.ErrorReply{Code: code, Message: msg}}}
}

// ServeControl registers the control protocol on h. A request is read only
// up to what the caller's role may send, and only while the caller has
// fewer than MaxControlStreamsPerPeer requests running.
func ServeControl(h host.Host, gate *TrustGate, handle ControlHandler) {
	streams := &peerStreams{open: map[peer.ID]int{}}
	h.SetStreamHandler(wire.ControlProtocol, func(s network.Stream) {
		from := s.Conn().RemotePeer()
		role := gate.Role(from)
		if role == "" {
			s.Reset()
			return
		}
		if !streams.acquire(from) {
			s.SetWriteDeadline(time.Now().Add(replyWriteTimeout))
			wire.WriteFrame(s, errorEnvelope("busy", fmt.Sprintf(
				"the peer refused the request: %d of your requests are already running there (the limit per peer; each `logs -f` holds one); end some and try again",
				MaxControlStreamsPerPeer)))
			s.Close()
			return
		}
		defer streams.release(from)
		serveControlStream(s, from, role, handle)
	})
}

func serveControlStream(s network.Stream, from peer.ID, role string, handle ControlHandler) {
	readTimeout := accessRequestReadTimeout
	if role == "admin" {
		readTimeout = requestReadTimeout
	}
	s.SetReadDeadline(time.Now().Add(readTimeout))
	var req messages.Envelope
	if err := wire.ReadFrame(bufio.NewReader(s), &req, wire.ControlFrameLimit(role)); err != nil {
		code := "invalid"
		msg := "the peer refused the request: " + err.Error()
		if errors.Is(err, wire.ErrFrameTooLarge) {
			code = "too_large"
			if role != "admin" {
				msg += fmt.Sprintf(" (a peer with the %s role may send requests of at most %d bytes; shipping a module needs admin)", role, wire.MaxAccessRoleControlFrame)
			}
		}
		s.SetWriteDeadline(time.Now().Add(replyWriteTimeout))
		wire.WriteFrame(s, errorEnvelope(code, msg))
		s.Close()
		return
	}
	s.SetReadDeadline(time.Time{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var writeMu sync.Mutex
	write := func(e *messages.Envelope) error {
		writeMu.Lock()
		defer writeMu.Unlock()
		e.RequestId = req.RequestId
		s.SetWriteDeadline(time.Now().Add(replyWriteTimeout))
		err := wire.WriteFrame(s, e)
		if err != nil {
			cancel() // the controller is gone or stuck: stop the work for it
		}
		return err
	}
	keepaliveDone := make(chan struct{})
	go func() {
		defer close(keepaliveDone)
		tick := time.NewTicker(keepaliveInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if write(&messages.Envelope{}) != nil {
					return
				}
				keepalivesSent.Add(1)
			}
		}
	}()

	err := handle(ctx, from, role, &req, write)
	gone := ctx.Err() != nil
	cancel()
	<-keepaliveDone
	if gone {
		s.Reset()
		return
	}
	final := &messages.Envelope{Final: true}
	if err != nil {
		var re *wire.RemoteError
		if !errors.As(err, &re) {
			re = &wire.RemoteError{Code: "failed", Message: err.Error()}
		}
		final.Body = &messages.Envelope_Error{Error: &messages.ErrorReply{Code: re.Code, Message: re.Message}}
	}
	if write(final) != nil {
		s.Reset()
		return
	}
	s.Close()
}

// CallControl sends req to p and hands each reply envelope to onReply until
// the final one. An error reply becomes a *wire.RemoteError. The call lasts until
// ctx ends or the peer stops answering (no frame, keepalives included, for
// callIdleTimeout); a call that ends early resets the stream, so the peer
// stops working for it at once.
func CallControl(ctx context.Context, h host.Host, p peer.ID, req *messages.Envelope, onReply func(*messages.Envelope) error) error {
	s, err := newUserStream(ctx, h, p, "fungi control", wire.ControlProtocol)
	if err != nil {
		return wire.StreamOpenError(err)
	}
	// The request goes out while replies are read: a peer may refuse a
	// large request after its first bytes, and the refusal must not wait
	// behind a write the peer no longer reads.
	// Until the request is out, the peer has nothing to answer: the read
	// deadline covers the send too, and shrinks to the idle timeout after.
	sent := make(chan struct{})
	var sendErr error
	var deadlineMu sync.Mutex
	sending := true
	go func() {
		defer close(sent)
		s.SetWriteDeadline(time.Now().Add(requestWriteTimeout))
		if sendErr = wire.WriteFrame(requestWriter(ctx, s), req); sendErr == nil {
			sendErr = s.CloseWrite()
		}
		deadlineMu.Lock()
		sending = false
		s.SetReadDeadline(time.Now().Add(callIdleTimeout))
		deadlineMu.Unlock()
	}()
	completed := false
	defer func() {
		select {
		case <-sent:
			if completed && sendErr == nil {
				s.Close()
				return
			}
		default:
		}
		s.Reset()
		<-sent
	}()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	r := bufio.NewReader(s)
	for {
		deadlineMu.Lock()
		idle := callIdleTimeout
		if sending {
			idle += requestWriteTimeout
		}
		s.SetReadDeadline(time.Now().Add(idle))
		deadlineMu.Unlock()
		var e messages.Envelope
		if err := wire.ReadFrame(r, &e, wire.MaxControlFrame); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("the peer did not answer in time: %w", ctx.Err())
			}
			select {
			case <-sent:
				if sendErr != nil {
					return fmt.Errorf("send the request: %w", wire.ExplainReset(sendErr))
				}
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("the peer sent nothing for %s, not even a keepalive; it is gone or overloaded, try again", callIdleTimeout)
			}
			return fmt.Errorf("read the reply: %w", wire.ExplainReset(err))
		}
		if er := e.GetError(); er != nil {
			completed = true
			return &wire.RemoteError{Code: er.Code, Message: er.Message}
		}
		if e.Body != nil {
			if err := onReply(&e); err != nil {
				return err
			}
		}
		if e.Final {
			completed = true
			return nil
		}
	}
}
