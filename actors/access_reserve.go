package actors

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
)

// attachPorts are the ports of the catalog entry an attach covers: the one
// it names, or all.
func attachPorts(msg *AttachAccess) ([]*messages.CatalogPort, error) {
	if len(msg.Entry.Ports) == 0 {
		return nil, errorf(Invalid, "%s publishes no tcp port to attach", msg.Entry.ServiceId)
	}
	if msg.Port == "" {
		return msg.Entry.Ports, nil
	}
	var names []string
	for _, p := range msg.Entry.Ports {
		if p.Name == msg.Port {
			return []*messages.CatalogPort{p}, nil
		}
		names = append(names, p.Name)
	}
	return nil, errorf(NotFound, "%s has no port named %q; its ports: %s", msg.Entry.ServiceId, msg.Port, strings.Join(names, ", "))
}

// hasPorts says the entry covers every one of ports.
func (r *accessRecord) hasPorts(ports []*messages.CatalogPort) bool {
	for _, p := range ports {
		if r.localPort(p.Name) == 0 {
			return false
		}
	}
	return true
}

// localPort is the local port of the entry's port name, 0 if it has none.
func (r *accessRecord) localPort(name string) int {
	for _, p := range r.Ports {
		if p.Name == name {
			return p.LocalPort
		}
	}
	return 0
}

func (r *accessRecord) portNames() string {
	var names []string
	for _, p := range r.Ports {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// reserve detaches an entry but keeps it, and its local ports, for the
// next attach: bookmarks and ssh configs that name the port stay right.
func (m *accessManager) reserve(ctx actor.Context, r *accessRecord) {
	if !r.Reserved {
		r.Reserved = true
		if err := m.save(); err != nil {
			r.Reserved = false
			ctx.Respond(errorf(Failed, "save access entries: %v", err))
			return
		}
		if pid, ok := m.forwarders[r.key()]; ok {
			ctx.Stop(pid)
			delete(m.forwarders, r.key())
		}
	}
	ctx.Respond(r.describe())
}

// attachReserved attaches a service detached with --keep-port: each port
// it had keeps its local port, and a port it did not have gets a new one.
func (m *accessManager) attachReserved(ctx actor.Context, msg *AttachAccess, r *accessRecord, ports []*messages.CatalogPort) {
	next := *r
	next.Reserved, next.Ports = false, nil
	next.Usage, next.Path = msg.Entry.Usage, msg.Entry.Path
	if msg.Alias != "" {
		next.Alias = msg.Alias
	}
	for i, p := range ports {
		local := r.localPort(p.Name)
		if i == 0 && msg.LocalPort != 0 {
			local = msg.LocalPort
		}
		next.Ports = append(next.Ports, accessPortRecord{Name: p.Name, LocalPort: local})
	}
	lns, err := listenAll(&next)
	if err != nil {
		ctx.Respond(errorf(Conflict, "%v", err))
		return
	}
	saved := *r
	*r = next
	if err := m.save(); err != nil {
		*r = saved
		for _, l := range lns {
			l.Close()
		}
		ctx.Respond(errorf(Failed, "save access entries: %v", err))
		return
	}
	m.spawn(ctx, r, lns)
	ctx.Respond(r.describe())
}
