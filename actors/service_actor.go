package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Restart backoff of a service that failed: doubling from the first to the
// cap, and back to the first once the service has run for stableAfter.
const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
	stableAfter  = time.Minute
	stopGrace    = 10 * time.Second
)

// serviceActor owns one service: its record, its lifecycle state machine
// (pulled → starting → running → stopping → stopped, or failed) and its
// running instance. It loads its record itself when started, so a restart by
// its supervisor begins from what is on disk.
type serviceActor struct {
	home          *home.Home
	name          string
	runtime       *actor.PID
	allowedMounts []string

	rec   *serviceRecord
	man   *manifest.Manifest
	state string
	inst  runtimes.Instance
	// gen numbers start attempts; a message about an older attempt is stale.
	gen       uint64
	startedAt time.Time
	// exitCode and containerID describe the instance for inspect.
	exitCode    int32
	containerID string
	backoff     time.Duration
	log         *serviceLog

	startWaiters []*actor.PID
	stopWaiters  []*actor.PID
	removeWaiter *actor.PID
}

func serviceProps(h *home.Home, name string, runtime *actor.PID, allowed []string) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &serviceActor{home: h, name: name, runtime: runtime, allowedMounts: allowed}
	})
}

func (a *serviceActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.load(ctx)
	case *actor.Restarting, *actor.Stopping:
		a.shutdown()
	case *messages.StartService:
		a.start(ctx)
	case *messages.StopService:
		a.stop(ctx)
	case *messages.InspectService:
		ctx.Respond(a.info())
	case *messages.RemoveService:
		a.remove(ctx)
	case *instanceStarted:
		a.started(ctx, msg)
	case *instanceExited:
		a.exited(ctx, msg)
	case *instanceStopped:
		a.stopped(ctx, msg)
	case *restartDue:
		a.restartDue(ctx, msg)
	case *runtimeRemoved:
		a.runtimeRemoved(ctx, msg)
	}
}

func (a *serviceActor) load(ctx actor.Context) {
	rec, man, err := loadService(a.home, a.name)
	if err != nil {
		// A record that does not load cannot be run; say so in list and
		// inspect rather than vanish.
		a.rec = &serviceRecord{Name: a.name, DesiredState: desiredStopped, LastError: "cannot load service: " + err.Error()}
		a.man = &manifest.Manifest{}
		a.state = stateFailed
		a.publish(ctx)
		return
	}
	a.rec, a.man = rec, man
	a.state = statePulled
	if rec.DesiredState == desiredStopped && rec.LastError == "" && !rec.PulledAt.IsZero() {
		if _, err := os.Stat(a.home.ServiceLog(a.name)); err == nil {
			a.state = stateStopped
		}
	}
	a.log = openServiceLog(a.home.ServiceLog(a.name))
	if rec.DesiredState == desiredRunning {
		a.log.printf("daemon started: bringing the service back")
		a.beginStart(ctx)
		return
	}
	a.publish(ctx)
}

func (a *serviceActor) info() *messages.ServiceInfo {
	info := describe(a.home, a.rec, a.man, a.state)
	if a.state == stateRunning {
		info.StartedAt = a.startedAt.UTC().Format(time.RFC3339)
	}
	info.ExitCode = a.exitCode
	info.ContainerId = a.containerID
	return info
}

// publish tells the registry the current state.
func (a *serviceActor) publish(ctx actor.Context) {
	// Request, not Send: the registry checks the sender is the current
	// actor of that service, not one being replaced.
	ctx.Request(ctx.Parent(), &serviceChanged{info: a.info()})
}

// persist writes the record; a failure is logged and kept in lastError, as
// the in-memory state is still right.
func (a *serviceActor) persist() {
	if err := saveRecord(a.home, a.rec); err != nil {
		a.log.printf("could not save state: %v", err)
	}
}

func (a *serviceActor) start(ctx actor.Context) {
	switch a.state {
	case stateRunning:
		ctx.Respond(a.info())
		return
	case stateStarting, stateStopping:
		// A stop in progress finishes first; stopped() then starts again.
	default:
		a.beginStart(ctx)
	}
	a.rec.DesiredState = desiredRunning
	a.persist()
	a.startWaiters = append(a.startWaiters, ctx.Sender())
}

func (a *serviceActor) beginStart(ctx actor.Context) {
	a.gen++
	a.state = stateStarting
	a.rec.DesiredState = desiredRunning
	if a.runtime == nil {
		a.fail(ctx, fmt.Sprintf("this node has no %s runtime (see `fungi info runtimes`)", a.rec.Runtime))
		return
	}
	mounts, err := a.man.ResolveMounts(a.home.DataDir(a.name), a.allowedMounts)
	if err != nil {
		a.fail(ctx, err.Error())
		return
	}
	a.log.printf("starting")
	ctx.Send(a.runtime, &startInstance{
		gen:     a.gen,
		replyTo: ctx.Self(),
		spec: runtimes.InstanceSpec{
			Name:     a.name,
			Manifest: a.man,
			Artifact: a.rec.Artifact,
			Ports:    a.rec.Ports,
			Mounts:   mounts,
			Log:      a.log,
		},
	})
	a.publish(ctx)
}

func (a *serviceActor) started(ctx actor.Context, msg *instanceStarted) {
	if msg.gen != a.gen || a.state != stateStarting {
		if msg.inst != nil {
			go msg.inst.Stop(context.Background())
		}
		return
	}
	if msg.err != nil {
		a.fail(ctx, msg.err.Error())
		return
	}
	a.inst = msg.inst
	a.state = stateRunning
	a.startedAt = time.Now()
	a.exitCode = 0
	if c, ok := msg.inst.(interface{ ContainerID() string }); ok {
		a.containerID = c.ContainerID()
	}
	a.rec.LastError = ""
	a.persist()
	a.log.printf("running")
	gen, inst, self, system := a.gen, msg.inst, ctx.Self(), ctx.ActorSystem()
	go func() {
		<-inst.Done()
		system.Root.Send(self, &instanceExited{gen: gen, err: inst.Err()})
	}()
	a.answer(ctx, &a.startWaiters, a.info())
	a.publish(ctx)
	if a.rec.DesiredState == desiredStopped || a.removeWaiter != nil {
		a.beginStop(ctx)
	}
}

// fail records a failed start; waiters get the reason.
func (a *serviceActor) fail(ctx actor.Context, reason string) {
	a.state = stateFailed
	a.inst = nil
	a.rec.LastError = reason
	a.persist()
	a.log.printf("failed: %s", reason)
	a.answer(ctx, &a.startWaiters, errorf(Failed, "%s did not start: %s", a.name, reason))
	a.answer(ctx, &a.stopWaiters, a.info())
	a.publish(ctx)
	if a.removeWaiter != nil {
		a.finishRemove(ctx)
	}
}

func (a *serviceActor) stop(ctx actor.Context) {
	a.rec.DesiredState = desiredStopped
	a.persist()
	switch a.state {
	case stateRunning:
		a.beginStop(ctx)
	case stateStarting, stateStopping:
	default:
		a.gen++ // cancels a pending restart
		if a.state == stateFailed {
			a.state = stateStopped
			a.publish(ctx)
		}
		ctx.Respond(a.info())
		return
	}
	a.stopWaiters = append(a.stopWaiters, ctx.Sender())
}

func (a *serviceActor) beginStop(ctx actor.Context) {
	a.state = stateStopping
	a.log.printf("stopping")
	inst, gen, self, system := a.inst, a.gen, ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		inst.Stop(c)
		system.Root.Send(self, &instanceStopped{gen: gen})
	}()
	a.publish(ctx)
}

func (a *serviceActor) stopped(ctx actor.Context, msg *instanceStopped) {
	if msg.gen != a.gen {
		return
	}
	a.inst = nil
	a.state = stateStopped
	a.log.printf("stopped")
	a.answer(ctx, &a.stopWaiters, a.info())
	a.publish(ctx)
	switch {
	case a.removeWaiter != nil:
		a.finishRemove(ctx)
	case a.rec.DesiredState == desiredRunning:
		a.beginStart(ctx)
	}
}

// exited handles an instance that ended without being asked to, and
// applies the manifest's restart policy.
func (a *serviceActor) exited(ctx actor.Context, msg *instanceExited) {
	if msg.gen != a.gen || a.state != stateRunning {
		return
	}
	reason := "exited"
	if msg.err != nil {
		reason = "exited: " + msg.err.Error()
	}
	var coded interface{ ExitCode() int }
	if errors.As(msg.err, &coded) {
		a.exitCode = int32(coded.ExitCode())
	}
	a.inst = nil
	a.state = stateFailed
	a.rec.LastError = reason
	a.log.printf("%s", reason)
	policy := a.man.Spec.Restart
	if policy == manifest.RestartAlways || (policy == manifest.RestartOnFailure && msg.err != nil) {
		a.scheduleRestart(ctx)
	}
	a.persist()
	a.publish(ctx)
}

func (a *serviceActor) scheduleRestart(ctx actor.Context) {
	if time.Since(a.startedAt) > stableAfter || a.backoff == 0 {
		a.backoff = firstBackoff
	} else {
		a.backoff = min(2*a.backoff, maxBackoff)
	}
	a.rec.Restarts++
	a.log.printf("restarting in %s (restart policy %s)", a.backoff, a.man.Spec.Restart)
	gen, self, system := a.gen, ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(a.backoff, func() { system.Root.Send(self, &restartDue{gen: gen}) })
}

func (a *serviceActor) restartDue(ctx actor.Context, msg *restartDue) {
	if msg.gen == a.gen && a.state == stateFailed && a.rec.DesiredState == desiredRunning {
		a.beginStart(ctx)
	}
}

func (a *serviceActor) remove(ctx actor.Context) {
	a.removeWaiter = ctx.Sender()
	a.rec.DesiredState = desiredStopped
	switch a.state {
	case stateRunning:
		a.beginStop(ctx)
	case stateStarting, stateStopping:
	default:
		a.gen++
		a.finishRemove(ctx)
	}
}

// finishRemove has the runtime delete what it keeps of the service (a
// container) before answering; the data folder stays.
func (a *serviceActor) finishRemove(ctx actor.Context) {
	if a.runtime == nil {
		a.runtimeRemoved(ctx, &runtimeRemoved{})
		return
	}
	ctx.Send(a.runtime, &removeInstance{name: a.name, replyTo: ctx.Self()})
}

func (a *serviceActor) runtimeRemoved(ctx actor.Context, msg *runtimeRemoved) {
	if a.removeWaiter == nil {
		return
	}
	if msg.err != nil {
		ctx.Send(a.removeWaiter, &serviceRemoved{err: msg.err})
	} else {
		a.log.printf("removed")
		ctx.Send(a.removeWaiter, &serviceRemoved{info: a.info()})
	}
	a.removeWaiter = nil
}

// answer sends reply to every waiter in *list and empties it.
func (a *serviceActor) answer(ctx actor.Context, list *[]*actor.PID, reply any) {
	for _, w := range *list {
		ctx.Send(w, reply)
	}
	*list = nil
}

// shutdown stops the instance when the actor itself stops (daemon exit) or
// is restarted by its supervisor. The desired state is left alone, so the
// next daemon brings the service back.
func (a *serviceActor) shutdown() {
	if a.inst != nil {
		c, cancel := context.WithTimeout(context.Background(), stopGrace)
		a.inst.Stop(c)
		cancel()
		a.inst = nil
	}
	if a.log != nil {
		a.log.Close()
	}
}

// serviceLog is a service's log file. The instance writes the guest's
// output to it from request goroutines, hence the lock. It keeps at most
// two files of maxLogBytes each (service.log and service.log.1), so a
// chatty service on an always-on node cannot fill the disk.
type serviceLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
	max  int64
}

const maxLogBytes = 16 << 20

func openServiceLog(path string) *serviceLog {
	l := &serviceLog{path: path, max: maxLogBytes}
	l.open()
	return l
}

func (l *serviceLog) open() {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	l.f = f
	if info, err := f.Stat(); err == nil {
		l.size = info.Size()
	}
}

func (l *serviceLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(b), nil
	}
	if l.size+int64(len(b)) > l.max && l.size > 0 {
		l.f.Close()
		os.Rename(l.path, l.path+".1")
		l.f, l.size = nil, 0
		l.open()
		if l.f == nil {
			return len(b), nil
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	return n, err
}

func (l *serviceLog) printf(format string, args ...any) {
	fmt.Fprintf(l, "%s fungi: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func (l *serviceLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
