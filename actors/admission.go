package actors

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Admission of access streams reads a snapshot the registry publishes, not
// the registry's mailbox: every new connection from a peer is admitted,
// and an ask per connection cost a mailbox round trip and two goroutine
// hand-offs on the path users wait on. The registry still owns the state;
// after every change to it that admission can see (a service spawned,
// reporting a new state, asked to stop, removed) it builds a new snapshot
// whole and swaps it in, so a reader never sees half a change.
//
// The snapshot is trusted when it admits: a stop is answered only after
// the snapshot refuses the service (the registry marks the service
// stopping in it before it hands the stop on, and relays the answer
// itself), and a remove only after the service is gone from it, so once
// `fungi service stop` or `remove` returns no new stream reaches the
// service. A refusal is confirmed with the registry: a service that has
// just started may be running before its report reached the snapshot, and
// the registry answers after the reports queued ahead of the question.

// admissionBoard is where the registry publishes its snapshot and the node
// reads it. It outlives a restart of the registry, which publishes afresh
// once it has loaded the services.
type admissionBoard struct {
	current atomic.Pointer[admissionSnapshot]
}

// admissionSnapshot is what admission needs of the published services, by
// service ID. It is never changed once published.
type admissionSnapshot struct {
	services map[string]*admissionService
}

// admissionService is one published service as admission sees it.
type admissionService struct {
	name  string
	state string
	ports []admissionPort
}

// admissionPort is a port by its manifest name and where a stream to it
// connects, worked out once per snapshot, not per connection.
type admissionPort struct {
	name   string
	target AccessTarget
}

// ResolveAccess says where a peer's access stream to a published, running
// service connects. The registry's snapshot admits it without an ask;
// only a refusal (or a node still loading its services) asks the
// registry, within timeout.
func (n *Node) ResolveAccess(req *ResolveAccess, timeout time.Duration) (*AccessTarget, error) {
	if s := n.admission.current.Load(); s != nil {
		if t, err := s.resolve(req); err == nil {
			return t, nil
		}
	}
	return askAs[*AccessTarget](n, n.registry, req, timeout)
}

// resolveAccess answers an access question from the registry's own state,
// the snapshot it published last.
func (r *serviceRegistry) resolveAccess(ctx actor.Context, msg *ResolveAccess) {
	t, err := r.snapshot.resolve(msg)
	if err != nil {
		ctx.Respond(err)
		return
	}
	ctx.Respond(t)
}

// resolve admits an access stream only to a published, running service,
// and names the port by its manifest name.
func (s *admissionSnapshot) resolve(req *ResolveAccess) (*AccessTarget, *Error) {
	var svc *admissionService
	if s != nil {
		svc = s.services[req.ServiceID]
	}
	if svc == nil {
		return nil, notPublished(req.ServiceID)
	}
	if svc.state != stateRunning {
		return nil, errorf(Conflict, "%s is %s on this node; its owner starts it with `fungi service start %s` (or an admin with `fungi peer admin service start %s`)", req.ServiceID, svc.state, svc.name, svc.name)
	}
	for i := range svc.ports {
		if p := &svc.ports[i]; p.name == req.Port || req.Port == "" {
			t := p.target
			return &t, nil
		}
	}
	return nil, errorf(NotFound, "%s has no port named %q", req.ServiceID, req.Port)
}

// publishAdmission builds the snapshot from the registry's services and
// publishes it. It runs in the registry's Receive after each change.
func (r *serviceRegistry) publishAdmission() {
	snap := &admissionSnapshot{services: map[string]*admissionService{}}
	for _, e := range r.services {
		info := e.info
		id := info.Expose.GetServiceId()
		if !info.Expose.GetEnabled() {
			continue
		}
		if prev := snap.services[id]; prev != nil && prev.name < info.Name {
			continue // two services under one ID: the same one every time
		}
		state := info.State
		if e.stopAsked && state == stateRunning {
			state = stateStopping
		}
		svc := &admissionService{name: info.Name, state: state}
		for _, p := range info.Ports {
			svc.ports = append(svc.ports, admissionPort{name: p.Name, target: accessTarget(info, p)})
		}
		snap.services[id] = svc
	}
	r.snapshot = snap
	if r.admission != nil {
		r.admission.current.Store(snap)
	}
}

// accessTarget is where a stream to port p of the service connects: its
// loopback host port, or an external service's target, which the caller
// checks against the node's allowance and resolves right before it
// connects.
func accessTarget(info *messages.ServiceInfo, p *messages.PortBinding) AccessTarget {
	if info.Runtime == manifest.RuntimeExternal {
		host, _, _ := net.SplitHostPort(p.HostAddress)
		return AccessTarget{Addr: p.HostAddress, External: true, Host: host, Port: int(p.ServicePort)}
	}
	return AccessTarget{Addr: fmt.Sprintf("127.0.0.1:%d", p.HostPort)}
}

// stopAnswerWithin bounds the registry's wait for a service to answer a
// stop it relays: the instance has the grace period to end, and the
// answer comes once it did.
const stopAnswerWithin = stopGrace + time.Minute

// stop takes the service out of admission, hands the stop on, and relays
// the answer once the snapshot agrees with it.
func (r *serviceRegistry) stop(ctx actor.Context, msg *messages.StopService) {
	e, ok := r.services[msg.Name]
	if !ok {
		ctx.Respond(noSuchService(msg.Name))
		return
	}
	r.holdAdmission(e)
	sender := ctx.Sender()
	f := ctx.RequestFuture(e.pid, msg, stopAnswerWithin)
	ctx.ReenterAfter(f, func(res any, err error) {
		info, _ := res.(*messages.ServiceInfo)
		r.stopAnswered(msg.Name, e, info)
		if err != nil {
			res = errorf(Failed, "stop %s: the service did not answer in time (%v)", msg.Name, err)
		}
		if sender != nil {
			ctx.Send(sender, res)
		}
	})
}

// holdAdmission refuses new streams to e's service from now on, until
// the service reports a state of its own after the stop (stopAsked).
func (r *serviceRegistry) holdAdmission(e *registryEntry) {
	e.stopAsked = true
	r.publishAdmission()
}

// stopAnswered settles admission once the service answered a stop with
// info (nil: an error, or no answer in time). A stop that did not take
// leaves the service as it reports itself. One that did, answered while
// the registry still holds the service running, means the report of it
// stopping is on its way behind the answer: the hold stays until it comes.
func (r *serviceRegistry) stopAnswered(name string, e *registryEntry, info *messages.ServiceInfo) {
	if r.services[name] != e {
		return // replaced or removed meanwhile: published already
	}
	stopped := info != nil && info.State != stateRunning
	switch {
	case stopped && e.info.State == stateRunning:
		e.stopAsked = true
	case !stopped:
		e.stopAsked = false
	}
	r.publishAdmission()
}

// reported keeps a hold until the service reports it took the stop in:
// any state but running comes after it (a report of running may have been
// sent before the service saw the stop).
func (r *serviceRegistry) reported(e *registryEntry) {
	if e.info.State != stateRunning {
		e.stopAsked = false
	}
	r.publishAdmission()
}
