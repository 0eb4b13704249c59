package yamux

import "context"

// Fork: lazy SYN and ACK. A short-lived stream (fungi opens one per
// forwarded connection, and one ahead of use to replace it) costs a frame
// for its SYN and one for its ACK, each a TLS record, a write syscall and a
// wake-up of the peer, though the spec lets both ride on a data frame. An
// opener that asks for it with WithLazySYN sends its SYN on the stream's
// first frame; an acceptor that receives a SYN on a data frame sends its ACK
// on its first frame. A SYN on a window update, which is what upstream
// go-yamux and every opener without the marker send, is ACKed at once as
// upstream does.

type lazySYNKey struct{}

// WithLazySYN returns a context that makes Session.OpenStream register the
// stream without sending anything: its SYN goes out on the stream's first
// frame (its first data, window update or FIN), so an opener that writes
// right away spends one frame, not two, and the peer, which learns of the
// stream from a data frame, sends its ACK on its own first frame (see
// Stream.LazyOpen). A stream reset before any frame sends nothing, as the
// peer never knew of it.
//
// Only for a stream whose opener writes (or closes) right away: the peer
// learns of the stream only then, and the stream holds one of the session's
// AcceptBacklog in-flight SYN slots until the peer's ACK, reset or close
// arrives, or this side closes or resets it.
func WithLazySYN(ctx context.Context) context.Context {
	return context.WithValue(ctx, lazySYNKey{}, true)
}

func isLazySYN(ctx context.Context) bool {
	lazy, _ := ctx.Value(lazySYNKey{}).(bool)
	return lazy
}

// LazyOpen reports whether the stream was opened lazily: on the opener's
// side, with WithLazySYN (its SYN rides on its first frame); on the
// acceptor's, by a SYN on a data frame (its ACK rides on its first frame).
func (s *Stream) LazyOpen() bool {
	return s.lazySYN || s.lazyACK
}

// lockFirstFrame is taken by every sender of a frame on a lazy opener's
// stream until the frame carrying its SYN has been written or queued: a
// frame sent alongside it from another goroutine (a Reset while the first
// Write is under way, say) must not reach the peer first, as the peer would
// drop it for a stream it does not know. It reports whether it locked;
// pass that to unlockFirstFrame.
func (s *Stream) lockFirstFrame() bool {
	if !s.lazySYN || s.synOut.Load() {
		return false
	}
	s.synMu.Lock()
	if s.synOut.Load() {
		s.synMu.Unlock()
		return false
	}
	return true
}

// unlockFirstFrame ends lockFirstFrame for a frame sent with flags that
// ended with err. A SYN whose frame was neither written nor queued (a write
// deadline that passed before the frame was queued) goes back to the
// stream, so that its next frame carries it: the peer would drop every
// frame of a stream it does not know. No other frame of the stream can
// have gone out meanwhile: they all wait for the lock. (An acceptor's ACK
// is not given back: a frame sent alongside may already have gone without
// it, and a second ACK would free another stream's in-flight SYN slot at
// the opener. Lost, it leaves the opener's slot held until the stream
// ends.)
func (s *Stream) unlockFirstFrame(locked bool, flags uint16, err error) {
	if !locked {
		return
	}
	if flags&flagSYN != 0 {
		if err == nil {
			s.synOut.Store(true)
		} else {
			s.stateLock.Lock()
			if s.state == streamSYNSent {
				s.state = streamInit
			}
			s.stateLock.Unlock()
		}
	}
	s.synMu.Unlock()
}
