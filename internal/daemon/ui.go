package daemon

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fungi-go/fungi/internal/apisock"
	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/internal/webapi"
	"github.com/fungi-go/fungi/messages"
)

// startUI serves the dashboard when config.yaml asks for it. The dashboard
// is a client of this daemon's own API on the home's socket (a named pipe
// on Windows), so it follows every rule the CLI does. A dashboard that cannot start (its port taken by
// another node on this machine) is logged, and the node runs without it.
// It stops when ctx ends, before the API server's graceful stop, so an
// open page's log stream does not hold that stop up; the returned func
// stops it too.
func startUI(ctx context.Context, h *home.Home, cfg config.Config, logf func(string, ...any), state *dashboardState) func() {
	// An address left by a daemon that was killed would send `fungi ui`
	// to a port that is no longer the dashboard's.
	os.Remove(h.UIAddrPath())
	if !cfg.UI.Enabled {
		state.set("", "off (config.yaml ui.enabled is false)")
		return func() {}
	}
	sock := apisock.Address(h.Dir)
	conn, err := grpc.NewClient("passthrough:///fungi-api",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return apisock.DialContext(ctx, sock) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(512<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		logf("dashboard off: %v", err)
		return func() {}
	}
	client := messages.NewDaemonClient(conn)
	srv, err := ui.Start(ui.Options{
		Listen:    cfg.UI.Listen,
		TokenPath: h.UITokenPath(),
		AddrPath:  h.UIAddrPath(),
		API:       webapi.New(client),
		Metrics:   webapi.Metrics(client),
	})
	if err != nil {
		conn.Close()
		state.off(err)
		return func() {}
	}
	state.set(fmt.Sprintf("http://%s/", srv.Addr), "on")
	logf("dashboard on %s (open it with `fungi ui`; config.yaml keys ui.enabled, ui.listen)", fmt.Sprintf("http://%s/", srv.Addr))
	stop := func() {
		srv.Close()
		conn.Close()
	}
	context.AfterFunc(ctx, stop)
	return stop
}
