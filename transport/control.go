package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
)

// Deadlines of the control protocol: reading a request (which may carry a
// module) and the whole exchange when the caller sets none.
const (
	requestReadTimeout = 2 * time.Minute
	defaultCallTimeout = 10 * time.Minute
)

// ControlHandler answers one request from a peer. reply sends an envelope
// of the answer; the transport adds the request ID and the final mark.
type ControlHandler func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error

// RemoteError is an error reply from a peer.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// ServeControl registers the control protocol on h.
func ServeControl(h host.Host, gate *TrustGate, handle ControlHandler) {
	h.SetStreamHandler(ControlProtocol, func(s network.Stream) {
		defer s.Close()
		from := s.Conn().RemotePeer()
		role := gate.Role(from)
		if role == "" {
			s.Reset()
			return
		}
		s.SetReadDeadline(time.Now().Add(requestReadTimeout))
		var req messages.Envelope
		if err := ReadFrame(bufio.NewReader(s), &req, MaxControlFrame); err != nil {
			code := "invalid"
			if errors.Is(err, ErrFrameTooLarge) {
				code = "too_large"
			}
			WriteFrame(s, &messages.Envelope{Final: true, Body: &messages.Envelope_Error{Error: &messages.ErrorReply{Code: code, Message: "the peer refused the request: " + err.Error()}}})
			return
		}
		s.SetReadDeadline(time.Time{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		reply := func(e *messages.Envelope) error {
			e.RequestId = req.RequestId
			return WriteFrame(s, e)
		}
		err := handle(ctx, from, role, &req, reply)
		final := &messages.Envelope{Final: true}
		if err != nil {
			var re *RemoteError
			if !errors.As(err, &re) {
				re = &RemoteError{Code: "failed", Message: err.Error()}
			}
			final.Body = &messages.Envelope_Error{Error: &messages.ErrorReply{Code: re.Code, Message: re.Message}}
		}
		reply(final)
		s.CloseWrite()
	})
}

// CallControl sends req to p and hands each reply envelope to onReply until
// the final one. An error reply becomes a *RemoteError.
func CallControl(ctx context.Context, h host.Host, p peer.ID, req *messages.Envelope, onReply func(*messages.Envelope) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCallTimeout)
		defer cancel()
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "fungi control"), p, ControlProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := WriteFrame(s, req); err != nil {
		return fmt.Errorf("send the request: %w", err)
	}
	s.CloseWrite()
	r := bufio.NewReader(s)
	for {
		var e messages.Envelope
		if err := ReadFrame(r, &e, MaxControlFrame); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("the peer did not answer in time: %w", ctx.Err())
			}
			return fmt.Errorf("read the reply: %w", err)
		}
		if er := e.GetError(); er != nil {
			return &RemoteError{Code: er.Code, Message: er.Message}
		}
		if e.Body != nil {
			if err := onReply(&e); err != nil {
				return err
			}
		}
		if e.Final {
			return nil
		}
	}
}
