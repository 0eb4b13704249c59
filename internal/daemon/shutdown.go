package daemon

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"github.com/fungi-go/fungi/messages"
)

// Shutdown stops the daemon by the path SIGTERM takes (services, then the
// peer host, then the API); `fungi daemon stop` calls it, so a stop works
// the same on every OS and needs no signal permission. The reply goes out
// before the API stops: the graceful stop waits for calls in flight.
func (s *apiServer) Shutdown(context.Context, *messages.ShutdownRequest) (*messages.ShutdownReply, error) {
	s.requestStop()
	o := s.opts
	return &messages.ShutdownReply{
		Pid:       int32(os.Getpid()),
		Listen:    o.Listen,
		Relays:    o.Relays,
		Bootstrap: o.Bootstrap,
		LogLevel:  o.LogLevel,
	}, nil
}

// dashboardState is what `fungi status` says about one of the daemon's
// local HTTP ports (the dashboard, the names port): its URL and whether it
// runs, or why not.
type dashboardState struct {
	mu    sync.Mutex
	url   string
	state string
	warn  *slog.Logger
}

func (d *dashboardState) set(url, state string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.url, d.state = url, state
}

// off records and logs at WARN why the dashboard did not start (most
// often its port is taken by another node on this machine): the node runs
// on without it, and the user should hear of it.
func (d *dashboardState) off(err error) {
	d.set("", "off: "+err.Error())
	if d.warn != nil {
		d.warn.Warn("dashboard off: " + err.Error() + " (set config.yaml ui.listen to another address, then `fungi daemon restart`)")
	}
}

func (d *dashboardState) get() (url, state string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.url, d.state
}
