package actors

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// serviceRegistry knows every service on the node: it validates pulls,
// assigns host ports, spawns one serviceActor per service and routes
// commands to them. It keeps the last state each service reported, so list
// is answered from its own mailbox.
type serviceRegistry struct {
	home          *home.Home
	events        *slog.Logger // the daemon log; nil discards
	runtimes      map[string]*actor.PID
	allowedMounts []string

	// decode reads a pulled manifest; it runs outside the mailbox. Tests
	// replace it to hold a decode in flight.
	decode func([]byte, manifest.NodeRules) (*manifest.Manifest, error)
	// pullWithin bounds a pull from the manifest's decoding to the
	// runtime's answer.
	pullWithin time.Duration

	services map[string]*registryEntry
	pulling  map[string]*pendingPull
	// snapshot is what access admission sees of the services, published
	// to admission after every change (actors/admission.go); a nil
	// admission publishes it nowhere.
	snapshot  *admissionSnapshot
	admission *admissionBoard
	// decoding counts the manifests being decoded now.
	decoding int
}

type registryEntry struct {
	pid  *actor.PID
	info *messages.ServiceInfo
	// stopAsked holds the service out of admission from the moment a stop
	// is handed on until the service reports it took it in.
	stopAsked bool
}

type pendingPull struct {
	sender   *actor.PID
	raw      []byte
	manifest *manifest.Manifest
	ports    []runtimes.PortBinding
	shipped  bool
	// apply is set for an apply (actors/apply_plan.go): what it changes
	// and how.
	apply *applyPlan
}

const (
	// pullWithin is the longest a pull may take once its manifest is read.
	// It is longer than the runtime actor's own deadline for a fetch, so a
	// slow download reports its own reason, and shorter than the API's wait
	// for a pull, so the caller hears this one rather than a bare timeout.
	pullWithin = 28 * time.Minute
	// maxDecodesInFlight bounds the manifests decoded at once. Each decode
	// is linear in a manifest of at most 1 MiB, yet yaml.v3 may build some
	// 100 MB of nodes for one; this bounds what a flood of pulls can take.
	maxDecodesInFlight = 2
)

// manifestDecoded is the result of decoding a pulled manifest, sent by the
// decoding goroutine to the registry.
type manifestDecoded struct {
	pull     *pullService
	sender   *actor.PID
	manifest *manifest.Manifest
	err      error
}

func newServiceRegistry(h *home.Home, runtimes map[string]*actor.PID, allowed []string) *serviceRegistry {
	return &serviceRegistry{home: h, runtimes: runtimes, allowedMounts: allowed,
		decode: manifest.ParseForNode, pullWithin: pullWithin}
}

func registryProps(h *home.Home, runtimes map[string]*actor.PID, allowed []string, events *slog.Logger, admission *admissionBoard) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		r := newServiceRegistry(h, runtimes, allowed)
		r.events, r.admission = events, admission
		return r
	}, supervision())
}

func (r *serviceRegistry) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.load(ctx)
	case *pullService:
		r.pull(ctx, msg)
	case *manifestDecoded:
		r.decoded(ctx, msg)
	case *messages.ListServicesRequest:
		r.list(ctx)
	case *messages.StartService:
		r.forward(ctx, msg.Name)
	case *messages.StopService:
		r.stop(ctx, msg)
	case *messages.InspectService:
		r.forward(ctx, msg.Name)
	case *messages.RemoveService:
		r.remove(ctx, msg)
	case *messages.CatalogRequest:
		r.catalog(ctx)
	case *messages.CatalogInspect:
		r.catalogInspect(ctx, msg)
	case *ResolveAccess:
		r.resolveAccess(ctx, msg)
	case *setAllowedMounts:
		r.setAllowedMounts(ctx, msg)
	case *serviceChanged:
		r.changed(ctx, msg)
	}
}

// load spawns an actor for every service folder on disk; each brings its
// service back to its desired state.
func (r *serviceRegistry) load(ctx actor.Context) {
	r.services = map[string]*registryEntry{}
	r.pulling = map[string]*pendingPull{}
	entries, _ := os.ReadDir(r.home.ServicesDir())
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, m, err := loadService(r.home, e.Name())
		info := &messages.ServiceInfo{Name: e.Name(), State: stateFailed}
		if err == nil {
			info = describe(r.home, rec, m, stateStopped)
		} else if rec, rerr := loadRecord(r.home, e.Name()); rerr == nil {
			// The manifest no longer decodes, but the record still names the
			// runtime, so a remove can clean up what the runtime keeps.
			info.Runtime = rec.Runtime
		}
		r.spawn(ctx, e.Name(), info)
	}
	r.publishAdmission()
}

func (r *serviceRegistry) spawn(ctx actor.Context, name string, info *messages.ServiceInfo) {
	runtime := r.runtimes[info.Runtime] // nil: starts fail and say why
	pid := ctx.SpawnPrefix(serviceProps(r.home, name, runtime, r.allowedMounts), "svc-"+name+"-")
	r.services[name] = &registryEntry{pid: pid, info: info}
	r.publishAdmission()
}

func (r *serviceRegistry) list(ctx actor.Context) {
	out := &messages.ServiceList{}
	for _, e := range r.services {
		out.Services = append(out.Services, e.info)
	}
	sort.Slice(out.Services, func(i, j int) bool { return out.Services[i].Name < out.Services[j].Name })
	ctx.Respond(out)
}

func (r *serviceRegistry) forward(ctx actor.Context, name string) {
	e, ok := r.services[name]
	if !ok {
		ctx.Respond(noSuchService(name))
		return
	}
	ctx.Forward(e.pid)
}

// pull hands the manifest to a goroutine to decode: a manifest comes from
// outside and, however bounded its decoding, the registry's mailbox keeps
// answering list and the service commands meanwhile. The result comes back
// as manifestDecoded.
func (r *serviceRegistry) pull(ctx actor.Context, msg *pullService) {
	if r.decoding >= maxDecodesInFlight {
		ctx.Respond(errorf(Conflict, "this node is already checking %d pulled manifests; try the pull again in a moment", r.decoding))
		return
	}
	r.decoding++
	system, self, sender := ctx.ActorSystem(), ctx.Self(), ctx.Sender()
	decode, rules := r.decode, manifest.NodeRules{AllowedMounts: r.allowedMounts}
	go func() {
		done := &manifestDecoded{pull: msg, sender: sender}
		defer func() {
			if p := recover(); p != nil {
				done.manifest, done.err = nil, fmt.Errorf("the manifest decoder failed (%v); this is a bug in fungi, please report it with the manifest", p)
			}
			system.Root.Send(self, done)
		}()
		done.manifest, done.err = decode(msg.req.ManifestYaml, rules)
	}()
}

// decoded goes on with a pull whose manifest was read: it reserves the name,
// assigns the host ports and asks the runtime for the artifact. The runtime
// answers to a future, so the pull has a deadline and an answer that comes
// after it cannot be taken for a later pull of the same name.
func (r *serviceRegistry) decoded(ctx actor.Context, msg *manifestDecoded) {
	if r.decoding > 0 { // a restart in between starts the count afresh
		r.decoding--
	}
	if msg.err != nil {
		ctx.Send(msg.sender, errorf(Invalid, "%v", msg.err))
		return
	}
	m := msg.manifest
	name := m.Metadata.Name
	runtime, ok := r.runtimes[m.Spec.Runtime]
	if !ok {
		ctx.Send(msg.sender, errorf(Invalid, "this node has no %s runtime (see `fungi info runtimes`)", m.Spec.Runtime))
		return
	}
	if _, busy := r.pulling[name]; busy {
		ctx.Send(msg.sender, errorf(Conflict, "%s is already being pulled; wait for that pull to finish", name))
		return
	}
	var plan *applyPlan
	if msg.pull.req.Apply {
		var done bool
		if plan, done = r.planApply(ctx, msg); done {
			return
		}
	} else if e, ok := r.services[name]; ok && isActive(e.info.State) {
		ctx.Send(msg.sender, errorf(Conflict, "%s is %s; `fungi service apply FILE` updates it in place (or stop it first with `fungi service stop %s`, then pull)", name, e.info.State, name))
		return
	}
	ports, err := r.assignPorts(name, m, plan != nil && plan.sideBySide)
	if err != nil {
		ctx.Send(msg.sender, err)
		return
	}
	pending := &pendingPull{sender: msg.sender, raw: msg.pull.req.ManifestYaml, manifest: m, ports: ports, shipped: len(msg.pull.req.Artifact) > 0, apply: plan}
	r.pulling[name] = pending
	fetched := actor.NewFuture(ctx.ActorSystem(), r.pullWithin)
	ctx.Send(runtime, &fetchArtifact{
		name:     name,
		req:      runtimes.FetchRequest{Manifest: m, ManifestDir: msg.pull.req.ManifestDir, Shipped: msg.pull.req.Artifact},
		progress: msg.pull.progress,
		replyTo:  fetched.PID(),
	})
	ctx.ReenterAfter(fetched, func(res any, err error) {
		if r.pulling[name] != pending {
			return
		}
		done, ok := res.(*fetchDone)
		if err != nil || !ok {
			delete(r.pulling, name)
			ctx.Send(pending.sender, errorf(Failed, "pull %s: the %s runtime did not report back within %s (%v); the name is free again, pull once more", name, m.Spec.Runtime, r.pullWithin, err))
			return
		}
		r.pulled(ctx, done)
	})
}

func isActive(state string) bool {
	return state == stateRunning || state == stateStarting || state == stateStopping
}

// assignPorts gives every manifest port a host port: the one this service
// had before for the same port name, the fixed one the manifest names, or a
// free one chosen now and kept from then on. beside asks for ports other
// than the service's own, for a new version to start beside the old one.
func (r *serviceRegistry) assignPorts(name string, m *manifest.Manifest, beside bool) ([]runtimes.PortBinding, error) {
	taken := map[int]string{}
	previous := map[string]int{}
	for other, e := range r.services {
		if e.info.Runtime == manifest.RuntimeExternal {
			continue // its ports belong to a program fungi did not start
		}
		for _, p := range e.info.Ports {
			if other == name && !beside {
				previous[p.Name] = int(p.HostPort)
				continue
			}
			taken[int(p.HostPort)] = other
		}
	}
	var out []runtimes.PortBinding
	for i, p := range m.Spec.Ports {
		portName := p.Name
		if portName == "" {
			portName = fmt.Sprintf("port-%d", i)
		}
		b := runtimes.PortBinding{Name: portName, ServicePort: p.ServicePort}
		if m.Spec.Runtime == manifest.RuntimeExternal {
			// The existing service holds its own port; fungi opens none,
			// so there is nothing to assign or to collide with.
			b.HostPort = p.ServicePort
			out = append(out, b)
			continue
		}
		switch {
		case !p.HostPort.Auto:
			b.HostPort = p.HostPort.Port
			if owner, ok := taken[b.HostPort]; ok {
				return nil, errorf(Conflict, "host port %d is already assigned to service %s; choose another hostPort or use auto", b.HostPort, owner)
			}
		case previous[portName] != 0 && taken[previous[portName]] == "":
			b.HostPort = previous[portName]
		default:
			port, err := freePort(taken)
			if err != nil {
				return nil, errorf(Failed, "no free host port for %s: %v", portName, err)
			}
			b.HostPort = port
		}
		taken[b.HostPort] = name
		out = append(out, b)
	}
	return out, nil
}

// freePort picks a free loopback port that no other service has been
// assigned, below the system's ephemeral range. The port is bound later,
// at every start, and a port from the ephemeral range (where the kernel's
// own choice of a free port lands) is handed by the kernel to any
// outgoing connection in between: the service's start then failed with
// "address already in use".
func freePort(taken map[int]string) (int, error) {
	low, high := autoPortRange()
	for range 64 {
		port := low + rand.IntN(high-low)
		if _, used := taken[port]; used {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port between %d and %d after 64 tries", low, high)
}

// autoPortRange is where freePort picks from: from 10000 up to the start
// of the ephemeral range (Linux's ip_local_port_range, 32768 by default;
// 49152 elsewhere, IANA's dynamic range that Windows, macOS and the BSDs
// use), or 20000–30000 when that range starts too low to leave room.
func autoPortRange() (low, high int) {
	ephemeral := 49152
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				ephemeral = n
			}
		}
	}
	if ephemeral < 11000 {
		return 20000, 30000
	}
	return 10000, ephemeral
}

func (r *serviceRegistry) pulled(ctx actor.Context, msg *fetchDone) {
	p, ok := r.pulling[msg.name]
	if !ok {
		return
	}
	delete(r.pulling, msg.name)
	if msg.err != nil {
		ctx.Send(p.sender, errorf(Failed, "pull %s: %v", msg.name, msg.err))
		return
	}
	if e, ok := r.services[msg.name]; ok && p.apply != nil && e.info.Runtime == p.manifest.Spec.Runtime {
		r.updateInPlace(ctx, p, e, msg)
		return
	}
	rec := &serviceRecord{
		Name:         msg.name,
		Runtime:      p.manifest.Spec.Runtime,
		Artifact:     msg.artifact,
		Ports:        p.ports,
		DesiredState: desiredStopped,
		PulledAt:     time.Now().UTC(),
		Shipped:      p.shipped,
	}
	if err := r.makeDataDir(msg.name, rec.Runtime); err != nil {
		ctx.Send(p.sender, errorf(Failed, "create the data folder: %v", err))
		return
	}
	if err := saveManifest(r.home, msg.name, p.raw); err != nil {
		ctx.Send(p.sender, errorf(Failed, "save the manifest: %v", err))
		return
	}
	if err := saveRecord(r.home, rec); err != nil {
		ctx.Send(p.sender, errorf(Failed, "save the service state: %v", err))
		return
	}
	if old, ok := r.services[msg.name]; ok {
		ctx.Stop(old.pid)
	}
	info := describe(r.home, rec, p.manifest, stateStopped)
	r.spawn(ctx, msg.name, info)
	if p.apply != nil {
		r.applied(ctx, p, &applyDone{info: info, result: &messages.ApplyResult{}})
		return
	}
	ctx.Send(p.sender, info)
}

func (r *serviceRegistry) remove(ctx actor.Context, msg *messages.RemoveService) {
	e, ok := r.services[msg.Name]
	if !ok {
		ctx.Respond(noSuchService(msg.Name))
		return
	}
	sender := ctx.Sender()
	// Stopping takes up to the grace period; a container's removal comes on
	// top of it.
	f := ctx.RequestFuture(e.pid, msg, stopGrace+time.Minute)
	ctx.ReenterAfter(f, func(res any, err error) {
		removed, ok := res.(*serviceRemoved)
		if err != nil || !ok {
			ctx.Send(sender, errorf(Failed, "remove %s: the service did not stop in time (%v)", msg.Name, err))
			return
		}
		if removed.err != nil {
			ctx.Send(sender, errorf(Failed, "remove %s: %v; the service is kept, try again", msg.Name, removed.err))
			return
		}
		if err := os.RemoveAll(r.home.ServiceDir(msg.Name)); err != nil {
			ctx.Send(sender, errorf(Failed, "remove %s: %v", msg.Name, err))
			return
		}
		ctx.Stop(e.pid)
		delete(r.services, msg.Name)
		r.publishAdmission()
		ctx.Send(sender, &messages.RemoveServiceResponse{Service: removed.info, DataDirKept: removed.info.GetDataDir()})
	})
}

// changed keeps the state a service actor reported, and writes a change of
// state to the daemon log: the one place every service's story is told.
func (r *serviceRegistry) changed(ctx actor.Context, msg *serviceChanged) {
	e, ok := r.services[msg.info.Name]
	if !ok || !e.pid.Equal(ctx.Sender()) {
		return
	}
	if r.events != nil && (e.info == nil || e.info.State != msg.info.State) {
		from := ""
		if e.info != nil {
			from = e.info.State
		}
		level := slog.LevelInfo
		if msg.info.State == stateFailed {
			level = slog.LevelWarn
		}
		r.events.Log(context.Background(), level, "service state", "service", msg.info.Name, "runtime", msg.info.Runtime, "from", from, "to", msg.info.State, "lastError", msg.info.LastError)
	}
	e.info = msg.info
	r.reported(e)
}

// makeDataDir creates the service's data folder, except for an external
// service: a program already running elsewhere never uses one.
func (r *serviceRegistry) makeDataDir(name, runtime string) error {
	if runtime == manifest.RuntimeExternal {
		return nil
	}
	return os.MkdirAll(r.home.DataDir(name), 0o755)
}
