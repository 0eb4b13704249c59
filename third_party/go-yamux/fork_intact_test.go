package yamux

import (
	"context"
	"testing"
)

// Tests of Stream.Intact.

// TestIntactUntilEitherSideEnds: a stream is intact while open, and not
// once the peer closed it, the peer reset it, this side closed its write
// half, or the session ended.
func TestIntactUntilEitherSideEnds(t *testing.T) {
	client, server := testClientServer()
	t.Cleanup(func() { client.Close(); server.Close() })
	accepted := make(chan *Stream, 8)
	go func() {
		for {
			s, err := server.AcceptStream()
			if err != nil {
				return
			}
			accepted <- s
		}
	}()
	open := func() (*Stream, *Stream) {
		t.Helper()
		s, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		return s, <-accepted
	}
	waitNotIntact := func(s *Stream, what string) {
		t.Helper()
		waitFor(t, "the stream to end after "+what, func() bool { return !s.Intact() })
	}

	s, peer := open()
	if !s.Intact() || !peer.Intact() {
		t.Fatal("a fresh stream is not intact")
	}
	peer.Close()
	waitNotIntact(s, "the peer closed it")

	s, peer = open()
	peer.Reset()
	waitNotIntact(s, "the peer reset it")

	s, _ = open()
	s.CloseWrite()
	if s.Intact() {
		t.Fatal("intact after closing its own write half")
	}

	s, _ = open()
	server.Close()
	waitNotIntact(s, "the session ended")
}
