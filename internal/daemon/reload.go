package daemon

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/external"
	"github.com/fungi-go/fungi/transport"
)

// reloader applies config.yaml to the running node: on SIGHUP and when the
// CLI has edited the file. Keys that can change live are handed to their
// owners (the actors by message, the external provider through its
// setter); the others are reported as waiting for a restart.
type reloader struct {
	mu       sync.Mutex
	home     *home.Home
	started  config.Config // what the daemon started with
	applied  config.Config // what it runs with now
	flags    []string      // --relay addresses, kept whatever the file says
	node     *actors.Node
	net      *transport.Network
	external *external.Provider
	stopMDNS func() error
	logf     func(string, ...any)
}

// setMDNS starts or stops mDNS; r.mu is held or the daemon is starting.
func (r *reloader) setMDNS(on bool) {
	if !on {
		if r.stopMDNS != nil {
			r.stopMDNS()
			r.stopMDNS = nil
		}
		return
	}
	if r.stopMDNS != nil {
		return
	}
	stop, err := r.net.StartMDNS(r.node.PeerFoundOnLAN)
	if err != nil {
		r.logf("mDNS is off: %v", err)
		return
	}
	r.stopMDNS = stop
}

// close stops what the reloader started.
func (r *reloader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setMDNS(false)
}

// reload reads config.yaml and applies what changed. A file that does not
// load changes nothing: the node keeps running on what it has.
func (r *reloader) reload() (*messages.ConfigReloadReply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := r.home.LoadConfig()
	if err != nil {
		return nil, err
	}
	reply := &messages.ConfigReloadReply{}
	for _, k := range config.Changed(r.applied, cfg) {
		if !k.Live {
			continue
		}
		switch k.Name {
		case "relays":
			infos, err := parseRelays(append(append([]string{}, cfg.Relays...), r.flags...))
			if err != nil {
				return nil, err
			}
			r.node.SetRelays(infos)
			r.applied.Relays = cfg.Relays
		case "mounts.allowed":
			r.node.SetAllowedMounts(cfg.Mounts.Allowed)
			r.applied.Mounts = cfg.Mounts
		case "external.allowedHosts":
			r.external.SetAllowedHosts(cfg.External.AllowedHosts)
			r.applied.External = cfg.External
		case "mdns":
			r.setMDNS(cfg.MDNS)
			r.applied.MDNS = cfg.MDNS
		default:
			continue
		}
		reply.Applied = append(reply.Applied, k.Name)
	}
	for _, k := range config.Changed(r.started, cfg) {
		if k.NeedsRestart() {
			reply.RestartNeeded = append(reply.RestartNeeded, k.Name)
		}
	}
	r.logf("config.yaml reloaded: applied %v; waiting for a restart %v", reply.Applied, reply.RestartNeeded)
	return reply, nil
}

// ReloadConfig is the CLI's reload after it edited config.yaml.
func (s *apiServer) ReloadConfig(context.Context, *messages.ConfigReloadRequest) (*messages.ConfigReloadReply, error) {
	reply, err := s.reloader.reload()
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "the daemon kept its settings: %v; fix config.yaml and run `fungi config reload`", err)
	}
	return reply, nil
}
