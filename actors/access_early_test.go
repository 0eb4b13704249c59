package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// The forwarder sends a request right behind the access header, before
// the peer answered; when the peer then refuses, the web client still
// gets a 502 page with the peer's reason, not a bare close.
func TestForwarderAnswersALateRefusalWith502(t *testing.T) {
	using, serving, servingGate := accessPeers(t)
	access.Serve(serving, servingGate, func(peer.ID, *messages.AccessHeader) (string, error) {
		return "", errors.New("files is stopped")
	}, t.Logf)

	f := &accessForwarder{peer: serving.ID(), rec: &accessRecord{ServiceID: "files", Usage: "web"}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		dial: func(ctx context.Context, p peer.ID, hdr *messages.AccessHeader) (access.HalfCloser, error) {
			return access.Open(ctx, using, p, hdr)
		}}
	if status, body := getThroughBridge(t, f); status != 502 || !strings.Contains(body, "files is stopped") {
		t.Fatalf("late refusal: status %d, body %q", status, body)
	}
}
