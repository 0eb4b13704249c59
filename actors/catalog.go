package actors

import (
	"sort"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// ResolveAccess names the service and port an access stream from a peer
// is for; Node.ResolveAccess answers it from the registry's snapshot
// (actors/admission.go).
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
