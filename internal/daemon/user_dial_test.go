package daemon_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/fungi-go/fungi/internal/daemon/daemontest"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// A command reaches a peer that is back although the dials made while it
// was down (the session's, the last command's) left its address in
// libp2p's dial backoff: the command clears it instead of failing with
// "dial backoff" (TestReachRoaming/tcp: `access attach` right after setup
// met the backoff of a background dial).
func TestCommandIsNotRefusedByTheDialBackoff(t *testing.T) {
	// A backoff no test machine outlasts, so the command below can only
	// succeed by clearing it, never by coming late.
	base := swarm.BackoffBase
	swarm.BackoffBase = 10 * time.Minute
	t.Cleanup(func() { swarm.BackoffBase = base })

	na := daemontest.Start(t, daemontest.Options{})
	a, infoA := na.API, na.Info
	// B's identity and port are fixed now; its daemon starts later.
	hb := daemontest.NewHome(t, daemontest.QuietConfig)
	if _, err := hb.Init(); err != nil {
		t.Fatal(err)
	}
	_, bid, err := hb.Identity()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listenB := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := a.AddDevice(ctx, &messages.DeviceAdd{PeerId: bid.String(), Alias: "node-b", Addrs: []string{listenB}}); err != nil {
		t.Fatal(err)
	}
	catalog := func() error {
		st, err := a.Remote(ctx, &messages.RemoteRequest{Device: "node-b", Request: &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}})
		if err != nil {
			return err
		}
		_, err = testutil.RecvAll(st)
		return err
	}
	// B is down: the command fails, and its dial leaves B's address in
	// backoff (with the session's, which fail too).
	if err := catalog(); err == nil {
		t.Fatal("a command reached a peer whose daemon is not running")
	}

	b := daemontest.Start(t, daemontest.Options{Home: hb, Listen: listenB}).API
	if _, err := b.TrustDevice(ctx, &messages.DeviceTrust{Device: infoA.PeerId}); err != nil {
		t.Fatal(err)
	}
	if err := catalog(); err != nil {
		t.Fatalf("the command after the peer came back: %v", err)
	}
}
