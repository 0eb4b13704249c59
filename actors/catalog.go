package actors

import (
	"fmt"
	"net"
	"sort"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// ResolveAccess asks the registry where a published service listens, for
// an access stream from a peer. The answer is an *AccessTarget or an *Error.
type ResolveAccess struct {
	ServiceID string
	Port      string
}

// AccessTarget is where an access stream is connected to: a service's
// loopback host port, or an external service's published target. An
// external target's host is checked against the node's allowance again
// and resolved by the caller right before it connects (External set,
// Host and Port the target), off the registry's mailbox.
type AccessTarget struct {
	Addr     string
	External bool
	Host     string
	Port     int
}

// catalogEntry is what peers see of a service: never its host ports; of an
// external service the target it publishes, so a user knows where an
// attach leads.
func catalogEntry(info *messages.ServiceInfo) *messages.CatalogEntry {
	e := &messages.CatalogEntry{
		ServiceId:   info.Expose.GetServiceId(),
		DisplayName: info.Expose.GetDisplayName(),
		Usage:       info.Expose.GetUsage(),
		Path:        info.Expose.GetPath(),
		IconUrl:     info.Expose.GetIconUrl(),
		State:       info.State,
		Runtime:     info.Runtime,
		Ports:       []*messages.CatalogPort{},
	}
	for _, p := range info.Ports {
		if p.Protocol == "tcp" {
			cp := &messages.CatalogPort{Name: p.Name}
			if info.Runtime == manifest.RuntimeExternal {
				cp.Target = p.HostAddress
			}
			e.Ports = append(e.Ports, cp)
		}
	}
	return e
}

// published returns the service exposed under serviceID.
func (r *serviceRegistry) published(serviceID string) *messages.ServiceInfo {
	for _, e := range r.services {
		if e.info.Expose.GetEnabled() && e.info.Expose.GetServiceId() == serviceID {
			return e.info
		}
	}
	return nil
}

func (r *serviceRegistry) catalog(ctx actor.Context) {
	out := &messages.Catalog{Services: []*messages.CatalogEntry{}}
	for _, e := range r.services {
		if e.info.Expose.GetEnabled() {
			out.Services = append(out.Services, catalogEntry(e.info))
		}
	}
	sortCatalog(out.Services)
	ctx.Respond(out)
}

func sortCatalog(es []*messages.CatalogEntry) {
	sort.Slice(es, func(i, j int) bool { return es[i].ServiceId < es[j].ServiceId })
}

func notPublished(id string) *Error {
	return errorf(NotFound, "this node publishes no service %q (see `fungi catalog list`)", id)
}

func (r *serviceRegistry) catalogInspect(ctx actor.Context, msg *messages.CatalogInspect) {
	info := r.published(msg.ServiceId)
	if info == nil {
		ctx.Respond(notPublished(msg.ServiceId))
		return
	}
	ctx.Respond(catalogEntry(info))
}

// resolveAccess admits an access stream only to a published, running
// service, and names the port by its manifest name.
func (r *serviceRegistry) resolveAccess(ctx actor.Context, msg *ResolveAccess) {
	info := r.published(msg.ServiceID)
	if info == nil {
		ctx.Respond(notPublished(msg.ServiceID))
		return
	}
	if info.State != stateRunning {
		ctx.Respond(errorf(Conflict, "%s is %s on this node; its owner starts it with `fungi service start %s` (or an admin with `fungi peer admin service start %s`)", msg.ServiceID, info.State, info.Name, info.Name))
		return
	}
	for _, p := range info.Ports {
		if p.Name == msg.Port || msg.Port == "" {
			if info.Runtime == manifest.RuntimeExternal {
				host, _, _ := net.SplitHostPort(p.HostAddress)
				ctx.Respond(&AccessTarget{Addr: p.HostAddress, External: true, Host: host, Port: int(p.ServicePort)})
				return
			}
			ctx.Respond(&AccessTarget{Addr: fmt.Sprintf("127.0.0.1:%d", p.HostPort)})
			return
		}
	}
	ctx.Respond(errorf(NotFound, "%s has no port named %q", msg.ServiceID, msg.Port))
}
