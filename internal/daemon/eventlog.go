package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/logging"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
	"github.com/fungi-go/fungi/transport"
)

// openLog starts the daemon log (stderr and HOME/logs/daemon.log) at the
// level of --log-level, else config.yaml's log.level.
func openLog(h *home.Home, cfg config.Config, opts Options) (*slog.Logger, func(), error) {
	name := cfg.Log.Level
	if opts.LogLevel != "" {
		name = opts.LogLevel
	}
	level, err := logging.ParseLevel(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%v (--log-level or config.yaml log.level)", err)
	}
	logger, f, err := logging.Open(h.Dir, level, opts.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("%v; check that %s is writable", err, logging.Path(h.Dir))
	}
	return logger, func() { f.Close() }, nil
}

// atLeast passes on only records at min or above: the actor system logs its
// own life at info, which would drown the node's events.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (a atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= a.min && a.Handler.Enabled(ctx, l)
}
func (a atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{a.Handler.WithAttrs(as), a.min}
}
func (a atLeast) WithGroup(g string) slog.Handler { return atLeast{a.Handler.WithGroup(g), a.min} }

// aliasOf is the alias this node's address book gives p, "" when none.
func aliasOf(node *actors.Node, p peer.ID) string {
	list, err := node.ListDevices(quickTimeout)
	if err != nil {
		return ""
	}
	for _, d := range list.GetDevices() {
		if d.PeerId == p.String() {
			return d.Alias
		}
	}
	return ""
}

// logControl records every administrative request a peer makes (who: alias
// and peer ID; what: the request and service; the result) before and after
// it runs. Catalog reads are not admin actions and are left out.
func logControl(log *slog.Logger, node *actors.Node, next transport.ControlHandler) transport.ControlHandler {
	return func(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
		action, service := adminAction(req)
		if action == "" {
			return next(ctx, from, role, req, reply)
		}
		start := time.Now()
		err := next(ctx, from, role, req, reply)
		attrs := []any{"peer", from.String(), "alias", aliasOf(node, from), "role", role, "action", action}
		if service != "" {
			attrs = append(attrs, "service", service)
		}
		attrs = append(attrs, "took", time.Since(start).Round(time.Millisecond))
		if err != nil {
			log.Warn("remote admin action failed", append(attrs, "result", "error", "err", err.Error())...)
		} else {
			log.Info("remote admin action", append(attrs, "result", "ok")...)
		}
		return err
	}
}

// adminAction names a control request and the service it is about; "" for
// the read-only catalog.
func adminAction(req *messages.Envelope) (action, service string) {
	switch b := req.Body.(type) {
	case *messages.Envelope_Catalog, *messages.Envelope_CatalogInspect:
		return "", ""
	case *messages.Envelope_RuntimesRequest:
		return "runtimes", ""
	case *messages.Envelope_Pull:
		return "pull", pulledName(b.Pull.GetManifestYaml())
	case *messages.Envelope_List:
		return "list", ""
	case *messages.Envelope_Start:
		return "start", b.Start.GetName()
	case *messages.Envelope_Stop:
		return "stop", b.Stop.GetName()
	case *messages.Envelope_Remove:
		return "remove", b.Remove.GetName()
	case *messages.Envelope_Inspect:
		return "inspect", b.Inspect.GetName()
	case *messages.Envelope_Logs:
		return "logs", b.Logs.GetName()
	default:
		return fmt.Sprintf("%T", req.Body), ""
	}
}

// logEvents records peer connections (direct or relayed) and relay
// reservations as they change, until the returned stop is called; alias
// names a peer (the address book's alias, "" for none).
//
// libp2p calls the connection notifications with its notifier lock held
// and before the connection accepts its first stream, so they must not
// wait: the alias is an actor's answer, asked on a goroutine of its own.
// Asked inline, it deadlocked with the device book's start (which
// registers a notifiee of its own, waiting for that lock) until the ask
// timed out: every connection of a starting daemon took 15 s to accept a
// stream.
func logEvents(log *slog.Logger, h host.Host, relays *transport.Relays, alias func(peer.ID) string) func() {
	notifee := &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			go func() {
				log.Info("peer connected", "peer", c.RemotePeer().String(), "alias", alias(c.RemotePeer()),
					"path", pathOf(c.RemoteMultiaddr()), "addr", c.RemoteMultiaddr().String(), "direction", c.Stat().Direction.String())
			}()
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			go func() {
				log.Info("peer disconnected", "peer", c.RemotePeer().String(), "alias", alias(c.RemotePeer()),
					"path", pathOf(c.RemoteMultiaddr()), "addr", c.RemoteMultiaddr().String())
			}()
		},
	}
	h.Network().Notify(notifee)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		last := map[peer.ID]transport.Reservation{}
		for {
			now := relays.Reservations()
			for id, r := range now {
				if old, ok := last[id]; ok && old.Error == r.Error && old.Expires.Equal(r.Expires) {
					continue
				}
				if r.Error != "" {
					log.Warn("relay reservation failed", "relay", id.String(), "err", r.Error)
				} else {
					log.Info("relay reservation", "relay", id.String(), "expires", r.Expires.UTC().Format(time.RFC3339))
				}
			}
			for id := range last {
				if _, ok := now[id]; !ok {
					log.Info("relay reservation dropped", "relay", id.String())
				}
			}
			last = maps.Clone(now)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		h.Network().StopNotify(notifee)
		cancel()
		<-done
	}
}

// pathOf says whether a connection goes straight to the peer or through a
// relay.
func pathOf(a ma.Multiaddr) string {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return "relayed"
	}
	return "direct"
}

// pulledName is the service name in a pulled manifest, "" when it does not
// parse (the pull itself says why).
func pulledName(yamlText []byte) string {
	m, err := manifest.Parse(yamlText)
	if err != nil {
		return ""
	}
	return m.Metadata.Name
}
