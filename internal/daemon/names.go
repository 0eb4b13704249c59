package daemon

import (
	"context"
	"os"
	"strings"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/names"
	"github.com/fungi-go/fungi/messages"
)

// startNames serves the names port when config.yaml asks for it: the
// access entries of api, by name. Its address goes into the home's
// names.addr, where ListAccess finds it for the entries' URLs, and its
// URL pattern into state, where `fungi status` finds it. A port that is
// taken (most often by another node on this machine, the port being fixed)
// is logged at WARN and kept in state, and the node runs without names. It
// stops when ctx ends; the returned func stops it too.
func startNames(ctx context.Context, h *home.Home, cfg config.Config, logf func(string, ...any), api *apiServer, state *dashboardState) func() {
	os.Remove(h.NamesAddrPath())
	if !cfg.Names.Enabled {
		state.set("", "off (config.yaml names.enabled is false)")
		return func() {}
	}
	srv, err := names.Start(names.Options{Listen: cfg.Names.Listen, Entries: func(ctx context.Context) ([]*messages.AccessEntry, error) {
		res, err := api.ListAccess(ctx, &messages.AccessListRequest{})
		if err != nil {
			return nil, err
		}
		return res.Entries, nil
	}})
	if err != nil {
		state.set("", "off: "+err.Error())
		if state.warn != nil {
			state.warn.Warn("names port off: " + err.Error())
		}
		return func() {}
	}
	if err := atomicfile.Write(h.NamesAddrPath(), []byte(srv.Addr+"\n"), 0o600); err != nil {
		logf("names port: %v", err)
	}
	state.set(names.URL("SERVICE.DEVICE", srv.Addr, "/"), "on")
	logf("names on http://localhost:%s/ (SERVICE.DEVICE.localhost reaches an attached service; config.yaml keys names.enabled, names.listen)", portOf(srv.Addr))
	stop := func() {
		state.set("", "off (the daemon is stopping)")
		os.Remove(h.NamesAddrPath())
		srv.Close()
	}
	context.AfterFunc(ctx, stop)
	return stop
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	return addr[i+1:]
}

// namesBase is the names port's host:port, "" while it is off.
func namesBase(h *home.Home) string {
	data, err := os.ReadFile(h.NamesAddrPath())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
