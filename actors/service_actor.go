package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// restartBackoff is the wait before a failed service is started again:
// doubling from first up to max, and back to first once the service has run
// for stableAfter. It is a variable so tests can make it short.
var restartBackoff = struct{ first, max time.Duration }{time.Second, 30 * time.Second}

const (
	stableAfter = time.Minute
	stopGrace   = 10 * time.Second
)

// serviceActor owns one service: its record, its lifecycle state machine
// (stopped → starting → running → stopping → stopped, or failed) and its
// running instance. It loads its record itself when started, so a restart by
// its supervisor begins from what is on disk.
type serviceActor struct {
	home          *home.Home
	name          string
	runtime       *actor.PID
	allowedMounts []string

	rec *serviceRecord
	// recordLoaded says rec was read from state.json; a record made up for a
	// service that did not load is never written over the one on disk.
	recordLoaded bool
	// broken says why the service could not be loaded; such a service
	// cannot start, but stop, remove, inspect and list still work.
	broken string
	man    *manifest.Manifest
	state  string
	inst   runtimes.Instance
	// gen numbers start attempts and pending restarts; a message about an
	// older one is stale.
	gen       uint64
	startedAt time.Time
	// containerID describes the instance for inspect.
	containerID string
	// runFailed says the last error is how a run ended (a crash-looping
	// job's), kept until a start by hand; an error of a start that failed
	// is cleared once a start works.
	runFailed bool
	backoff   time.Duration
	// retry is the timer of a pending restart, nil when there is none.
	retry *time.Timer
	log   *serviceLog
	// once says the start by hand under way asked not to be tried again
	// should it fail (service expose leaves such a service stopped).
	once bool

	startWaiters []*actor.PID
	stopWaiters  []*actor.PID
	// jobWaiters asked to start with wait: they are answered when the run
	// ends (a job's exit, a stop, a failed start), not when it is running.
	jobWaiters   []*actor.PID
	removeWaiter *actor.PID
	// update is an apply under way (actors/apply.go), nil when none is.
	update *pendingUpdate
}

func serviceProps(h *home.Home, name string, runtime *actor.PID, allowed []string) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &serviceActor{home: h, name: name, runtime: runtime, allowedMounts: allowed}
	})
}

func (a *serviceActor) Receive(ctx actor.Context) {
	if a.refuseDuringUpdate(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.load(ctx)
	case *actor.Restarting, *actor.Stopping:
		a.shutdown()
	case *messages.StartService:
		a.start(ctx, msg)
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
	case *setAllowedMounts:
		a.allowedMounts = msg.allowed
	case *runtimeRemoved:
		a.runtimeRemoved(ctx, msg)
	case *applyUpdate:
		a.applyUpdateMsg(ctx, msg)
	case *oldStopped:
		a.oldStoppedMsg(ctx, msg)
	}
}

func (a *serviceActor) load(ctx actor.Context) {
	a.log = openServiceLog(a.home.ServiceLog(a.name))
	rec, recErr := loadRecord(a.home, a.name)
	man, manErr := loadManifest(a.home, a.name)
	if recErr != nil || manErr != nil {
		a.loadBroken(ctx, rec, errors.Join(recErr, manErr))
		return
	}
	a.rec, a.man, a.recordLoaded = rec, man, true
	// A pulled service that was never started is stopped too (SPEC: pull
	// registers the service stopped).
	a.state = stateStopped
	if rec.DesiredState == desiredRunning {
		a.log.printf("daemon started: bringing the service back")
		a.beginStart(ctx)
		return
	}
	a.publish(ctx)
}

// loadBroken keeps a service whose record or manifest does not load (edited
// by hand, cut short, written by another version) in the failed state with
// the reason, so it shows in list and inspect and can be pulled again or
// removed, rather than vanish or take the node down.
func (a *serviceActor) loadBroken(ctx actor.Context, rec *serviceRecord, err error) {
	a.broken = fmt.Sprintf("cannot load the service: %v; pull its manifest again (`fungi service pull FILE`) or remove it (`fungi service remove %s`)", err, a.name)
	a.recordLoaded = rec != nil
	if rec == nil {
		rec = &serviceRecord{Name: a.name, DesiredState: desiredStopped}
	}
	rec.LastError = a.broken
	a.rec, a.man = rec, &manifest.Manifest{}
	a.state = stateFailed
	a.log.printf("%s", a.broken)
	a.publish(ctx)
}

func (a *serviceActor) info() *messages.ServiceInfo {
	info := describe(a.home, a.rec, a.man, a.state)
	if a.state == stateRunning {
		info.StartedAt = a.startedAt.UTC().Format(time.RFC3339)
	}
	info.ExitCode = a.rec.ExitCode
	info.ContainerId = a.containerID
	return info
}

// publish tells the registry the current state.
func (a *serviceActor) publish(ctx actor.Context) {
	// Request, not Send: the registry checks the sender is the current
	// actor of that service, not one being replaced.
	ctx.Request(ctx.Parent(), &serviceChanged{info: a.info()})
}

// persist writes the record; a failure is logged, as the in-memory state is
// still right. A record that was never read from disk is not written: it
// would replace what is there with what little the actor knows.
func (a *serviceActor) persist() {
	if !a.recordLoaded {
		return
	}
	if err := saveRecord(a.home, a.rec); err != nil {
		a.log.printf("could not save state: %v", err)
	}
}

func (a *serviceActor) start(ctx actor.Context, msg *messages.StartService) {
	if a.broken != "" {
		ctx.Respond(errorf(Invalid, "%s cannot start: %s", a.name, a.broken))
		return
	}
	if a.state == stateRunning {
		if msg.Wait {
			a.jobWaiters = append(a.jobWaiters, ctx.Sender())
			return
		}
		ctx.Respond(a.info())
		return
	}
	// A start this node refuses outright is answered now, and the desired
	// state stays what it was: retrying cannot make it work.
	if _, err := a.preflight(); err != nil {
		ctx.Respond(errorf(Invalid, "%s did not start: %v", a.name, err))
		if a.state != stateStarting && a.state != stateStopping {
			a.cancelRestart()
			a.state = stateFailed
			a.rec.LastError = err.Error()
			a.log.printf("start refused: %v", err)
			a.persist()
			a.publish(ctx)
		}
		return
	}
	if msg.Wait {
		a.jobWaiters = append(a.jobWaiters, ctx.Sender())
	} else {
		a.startWaiters = append(a.startWaiters, ctx.Sender())
	}
	a.rec.DesiredState = desiredRunning
	a.persist()
	if a.state == stateStarting || a.state == stateStopping {
		// The attempt under way answers; a stop in progress finishes first
		// and stopped() then starts again.
		return
	}
	a.backoff = 0 // a start asked for by hand is not a restart
	// The last run's exit code and error were kept for the owner to read
	// (a crash-looping job's stop leaves them); a start by hand is a new
	// run.
	a.rec.ExitCode, a.rec.LastError, a.runFailed = 0, "", false
	a.once = msg.Once
	a.beginStart(ctx)
}

// preflight checks what the node itself can tell before asking the
// runtime: that it has the runtime, and that the mounts are allowed.
func (a *serviceActor) preflight() ([]manifest.ResolvedMount, error) {
	if a.runtime == nil {
		return nil, fmt.Errorf("this node has no %s runtime (see `fungi info runtimes`)", a.rec.Runtime)
	}
	if a.rec.Runtime == manifest.RuntimeExternal {
		return nil, nil // a program running elsewhere: no mounts, no data folder
	}
	return a.man.ResolveMounts(a.home.DataDir(a.name), a.allowedMounts)
}

// beginStart begins a start attempt for a service whose desired state is
// running.
func (a *serviceActor) beginStart(ctx actor.Context) {
	a.cancelRestart()
	mounts, err := a.preflight()
	if err != nil {
		a.fail(ctx, err.Error(), false)
		return
	}
	a.state = stateStarting
	a.log.printf("starting")
	// The instance may write (a job may even end) before started() logs
	// "running": its output waits until then, so the log reads in the
	// order things happened.
	a.log.hold()
	ctx.Send(a.runtime, &startInstance{
		gen:     a.gen,
		replyTo: ctx.Self(),
		spec: runtimes.InstanceSpec{
			Name:     a.name,
			Manifest: a.man,
			Artifact: a.rec.Artifact,
			Ports:    a.rec.Ports,
			Mounts:   mounts,
			DataDir:  a.home.DataDir(a.name),
			Log:      guestLog{a.log},
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
	once := a.once
	a.once = false
	if msg.err != nil {
		a.log.release()
		a.fail(ctx, msg.err.Error(), !once)
		return
	}
	a.inst = msg.inst
	a.state = stateRunning
	a.startedAt = time.Now()
	if !a.runFailed {
		a.rec.LastError = ""
	}
	if c, ok := msg.inst.(interface{ ContainerID() string }); ok {
		a.containerID = c.ContainerID()
	}
	a.persist()
	a.log.printf("running")
	a.log.release()
	gen, inst, self, system := a.gen, msg.inst, ctx.Self(), ctx.ActorSystem()
	go func() {
		<-inst.Done()
		system.Root.Send(self, &instanceExited{gen: gen, err: inst.Err()})
	}()
	// The registry hears first: whoever was told it runs may use it at
	// once (an access stream is admitted by an ask queued behind this).
	a.publish(ctx)
	a.answer(ctx, &a.startWaiters, a.info())
	if a.rec.DesiredState == desiredStopped || a.removeWaiter != nil {
		a.beginStop(ctx)
	}
}

// fail records a start that did not work and answers everyone waiting on
// it with the reason. A start that failed in the runtime (an engine not up
// yet, a port held) is tried again under the restart policy, with the same
// backoff as a crash; one the node refused (retry false) is not.
func (a *serviceActor) fail(ctx actor.Context, reason string, retry bool) {
	a.state = stateFailed
	a.inst = nil
	a.rec.LastError = reason
	a.log.printf("failed: %s", reason)
	answer := fmt.Sprintf("%s did not start: %s", a.name, reason)
	switch {
	case a.removeWaiter != nil:
	case a.rec.DesiredState == desiredStopped:
		// A stop came in while the start was under way: it is stopped.
		a.state = stateStopped
	case retry && a.restartsAfterFailure():
		wait := a.scheduleRestart(ctx)
		answer += fmt.Sprintf("; trying again in %s (restart policy %s); `fungi service stop %s` stops the tries", wait, a.man.Spec.Restart, a.name)
	}
	a.persist()
	a.answer(ctx, &a.startWaiters, errorf(Failed, "%s", answer))
	a.answer(ctx, &a.jobWaiters, errorf(Failed, "%s", answer))
	a.answer(ctx, &a.stopWaiters, a.info())
	a.publish(ctx)
	if a.removeWaiter != nil {
		a.finishRemove(ctx)
	}
}

func (a *serviceActor) restartsAfterFailure() bool {
	p := a.man.Spec.Restart
	return p == manifest.RestartAlways || p == manifest.RestartOnFailure
}

func (a *serviceActor) stop(ctx actor.Context) {
	a.rec.DesiredState = desiredStopped
	a.persist()
	switch a.state {
	case stateRunning:
		a.beginStop(ctx)
	case stateStarting, stateStopping:
	default:
		a.cancelRestart()
		if a.state == stateFailed && a.broken == "" {
			a.state = stateStopped
		}
		a.publish(ctx)
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
	a.answer(ctx, &a.jobWaiters, a.info())
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
	failed := msg.err != nil
	var coded interface{ ExitCode() int }
	if errors.As(msg.err, &coded) {
		a.rec.ExitCode = int32(coded.ExitCode())
		failed = coded.ExitCode() != 0
	} else if msg.err == nil {
		a.rec.ExitCode = 0
	}
	if time.Since(a.startedAt) > stableAfter {
		a.backoff = 0 // it ran well for a while: this is a new run of trouble
	}
	a.inst = nil
	policy := a.man.Spec.Restart
	if failed {
		a.state = stateFailed
		a.rec.LastError = reason
		a.runFailed = true
	} else {
		// A job that ran to its end (a command component, a container
		// that exits 0) is done, not broken; unless it is to run always,
		// a daemon restart must not run it again.
		a.state = stateStopped
		a.rec.LastError = ""
		reason = "exited with code 0"
		if policy != manifest.RestartAlways {
			a.rec.DesiredState = desiredStopped
		}
	}
	a.log.printf("%s", reason)
	if policy == manifest.RestartAlways || (policy == manifest.RestartOnFailure && failed) {
		a.scheduleRestart(ctx)
	}
	a.persist()
	a.answer(ctx, &a.jobWaiters, a.info())
	a.publish(ctx)
}

// scheduleRestart arms the next try after the backoff and returns the wait.
func (a *serviceActor) scheduleRestart(ctx actor.Context) time.Duration {
	if a.backoff == 0 {
		a.backoff = restartBackoff.first
	} else {
		a.backoff = min(2*a.backoff, restartBackoff.max)
	}
	a.rec.Restarts++
	a.log.printf("restarting in %s (restart policy %s)", a.backoff, a.man.Spec.Restart)
	gen, self, system := a.gen, ctx.Self(), ctx.ActorSystem()
	a.retry = time.AfterFunc(a.backoff, func() { system.Root.Send(self, &restartDue{gen: gen}) })
	return a.backoff
}

// cancelRestart drops a pending restart: its timer is stopped, and should
// it have fired already, its message is stale.
func (a *serviceActor) cancelRestart() {
	if a.retry != nil {
		a.retry.Stop()
		a.retry = nil
	}
	a.gen++
}

func (a *serviceActor) restartDue(ctx actor.Context, msg *restartDue) {
	if msg.gen != a.gen {
		return
	}
	a.beginStart(ctx)
}

func (a *serviceActor) remove(ctx actor.Context) {
	a.removeWaiter = ctx.Sender()
	a.rec.DesiredState = desiredStopped
	switch a.state {
	case stateRunning:
		a.beginStop(ctx)
	case stateStarting, stateStopping:
	default:
		a.cancelRestart()
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
	if a.retry != nil {
		a.retry.Stop()
		a.retry = nil
	}
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
