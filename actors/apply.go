package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Update strategies an apply reports.
const (
	// strategySideBySide starts the new version on host ports of its own
	// and switches the service to them once it serves; the old version
	// stops after. Access entries resolve the host port per connection,
	// so the ports users attached to on other nodes do not change.
	strategySideBySide = "side-by-side"
	// strategyStopStart stops the old version before the new one starts:
	// they cannot run at once (one container per service, a fixed host
	// port, a job).
	strategyStopStart = "stop-start"
	// strategyFiles only replaces the files of a service that is not
	// running.
	strategyFiles = "files"
)

// applyUpdate asks a service actor to take a new version of its service:
// its manifest (raw, as it is saved), its record and how to replace a
// running instance. The answer, applyDone, goes to the sender.
type applyUpdate struct {
	raw        []byte
	rec        *serviceRecord
	man        *manifest.Manifest
	sideBySide bool
}

// applyDone answers applyUpdate.
type applyDone struct {
	info   *messages.ServiceInfo
	result *messages.ApplyResult
	err    error
}

// candidateStarted is a new (or, rolling back, the previous) version's
// start, reported to the service actor.
type candidateStarted struct {
	gen  uint64
	inst runtimes.Instance
	err  error
}

// oldStopped says the old instance of a stop-start update has ended.
type oldStopped struct{ gen uint64 }

// pendingUpdate is an update under way in a service actor.
type pendingUpdate struct {
	msg      *applyUpdate
	replyTo  *actor.PID
	prevRec  *serviceRecord
	prevMan  *manifest.Manifest
	result   *messages.ApplyResult
	began    time.Time
	rollback bool // the new version failed; the previous one is starting again
	old      runtimes.Instance
}

// applyUpdateMsg takes a new version: in place of the files of a service
// that is not running, or by replacing the running instance.
func (a *serviceActor) applyUpdateMsg(ctx actor.Context, msg *applyUpdate) {
	if a.update != nil {
		ctx.Respond(&applyDone{err: errorf(Conflict, "%s is being updated already; wait for that apply to finish", a.name)})
		return
	}
	msg.rec.Restarts = a.rec.Restarts
	if a.state != stateRunning || a.broken != "" {
		a.applyFiles(ctx, msg)
		return
	}
	msg.rec.DesiredState = desiredRunning
	u := &pendingUpdate{msg: msg, replyTo: ctx.Sender(), prevRec: a.rec, prevMan: a.man, began: time.Now(),
		result: &messages.ApplyResult{Action: "updated", Strategy: strategyStopStart}}
	a.update = u
	a.log.printf("applying a new version (%s)", a.describeStrategy(msg))
	if msg.sideBySide {
		u.result.Strategy = strategySideBySide
		a.startCandidate(ctx, msg.rec, msg.man)
		return
	}
	u.result.Note = a.describeStrategy(msg)
	// Stop-start: the old instance's exit is not a crash.
	a.cancelRestart()
	u.old, a.inst = a.inst, nil
	a.state = stateStopping
	a.publish(ctx)
	inst, gen, self, system := u.old, a.gen, ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		inst.Stop(c)
		system.Root.Send(self, &oldStopped{gen: gen})
	}()
}

func (a *serviceActor) describeStrategy(msg *applyUpdate) string {
	if msg.sideBySide {
		return "the new version starts beside the old one, then takes its place"
	}
	switch {
	case msg.man.Spec.Runtime == manifest.RuntimeExternal:
		return "fungi runs nothing for an external service: it switches to the new target"
	case len(msg.man.Spec.Ports) == 0:
		return "a job has no port to switch: the old run stops, then the new one starts"
	default:
		return "a fixed host port cannot be held twice: the old version stops, then the new one starts"
	}
}

// applyFiles takes the new version of a service that is not running: its
// files are replaced and, asked to, it starts.
func (a *serviceActor) applyFiles(ctx actor.Context, msg *applyUpdate) {
	msg.rec.DesiredState = desiredStopped
	if err := a.saveVersion(msg); err != nil {
		ctx.Respond(&applyDone{err: err})
		return
	}
	a.rec, a.man, a.recordLoaded, a.broken = msg.rec, msg.man, true, ""
	if a.state == stateFailed {
		a.state = stateStopped
	}
	a.log.printf("applied a new version")
	a.publish(ctx)
	ctx.Respond(&applyDone{info: a.info(), result: &messages.ApplyResult{Action: "updated", Strategy: strategyFiles}})
}

func (a *serviceActor) saveVersion(msg *applyUpdate) error {
	if err := saveManifest(a.home, a.name, msg.raw); err != nil {
		return errorf(Failed, "save the manifest: %v", err)
	}
	if err := saveRecord(a.home, msg.rec); err != nil {
		return errorf(Failed, "save the service state: %v", err)
	}
	return nil
}

// startCandidate asks the runtime to start a version of the service; the
// answer comes back as candidateStarted.
func (a *serviceActor) startCandidate(ctx actor.Context, rec *serviceRecord, man *manifest.Manifest) {
	mounts, err := man.ResolveMounts(a.home.DataDir(a.name), a.allowedMounts)
	if err != nil {
		a.candidateStartedMsg(ctx, &candidateStarted{gen: a.gen, err: err})
		return
	}
	if a.inst == nil { // side by side, the old version serves meanwhile
		a.state = stateStarting
		a.publish(ctx)
	}
	f := actor.NewFuture(ctx.ActorSystem(), startWithin+10*time.Second)
	ctx.Send(a.runtime, &startInstance{gen: a.gen, replyTo: f.PID(), spec: runtimes.InstanceSpec{
		Name: a.name, Manifest: man, Artifact: rec.Artifact, Ports: rec.Ports, Mounts: mounts,
		DataDir: a.home.DataDir(a.name), Log: guestLog{a.log}, Beside: a.inst != nil,
	}})
	gen := a.gen
	ctx.ReenterAfter(f, func(res any, err error) {
		st, ok := res.(*instanceStarted)
		if err != nil || !ok {
			a.candidateStartedMsg(ctx, &candidateStarted{gen: gen, err: fmt.Errorf("the runtime did not report back in time (%v)", err)})
			return
		}
		a.candidateStartedMsg(ctx, &candidateStarted{gen: gen, inst: st.inst, err: st.err})
	})
}

func (a *serviceActor) oldStoppedMsg(ctx actor.Context, msg *oldStopped) {
	if a.update == nil || msg.gen != a.gen {
		return
	}
	a.log.printf("stopped the old version")
	a.startCandidate(ctx, a.update.msg.rec, a.update.msg.man)
}

func (a *serviceActor) candidateStartedMsg(ctx actor.Context, msg *candidateStarted) {
	u := a.update
	if u == nil || msg.gen != a.gen {
		if msg.inst != nil {
			go msg.inst.Stop(context.Background())
		}
		return
	}
	switch {
	case msg.err == nil && !u.rollback:
		a.adoptNew(ctx, msg.inst)
	case msg.err == nil:
		a.adoptPrevious(ctx, msg.inst)
	case !u.rollback:
		a.rollBack(ctx, msg.err)
	default:
		a.update = nil
		reason := fmt.Sprintf("the new version did not start (%s), nor did the previous one again: %v", u.result.RollbackReason, msg.err)
		a.fail(ctx, reason, true)
		ctx.Send(u.replyTo, &applyDone{err: errorf(Failed, "apply %s: %s", a.name, reason)})
	}
}

// adoptNew makes the started new version the service: its files are
// saved, and the old instance, if still running, stops.
func (a *serviceActor) adoptNew(ctx actor.Context, inst runtimes.Instance) {
	u := a.update
	if err := a.saveVersion(u.msg); err != nil {
		// The files still name the old version: run what they name.
		a.log.printf("%v; rolling back", err)
		go inst.Stop(context.Background())
		a.rollBack(ctx, err)
		return
	}
	old := a.inst
	a.rec, a.man = u.msg.rec, u.msg.man
	a.running(ctx, inst)
	u.result.SwitchMs = time.Since(u.began).Milliseconds()
	if old != nil { // side by side: the old version leaves only now
		u.result.SwitchMs = 0
		go func() {
			c, cancel := context.WithTimeout(context.Background(), stopGrace)
			defer cancel()
			old.Stop(c)
			// A replaced container is removed: the service keeps one.
			if d, ok := old.(interface{ Discard(context.Context) error }); ok {
				rm, done := context.WithTimeout(context.Background(), time.Minute)
				defer done()
				d.Discard(rm)
			}
		}()
	}
	a.log.printf("running the new version (%s)", u.result.Strategy)
	a.finishUpdate(ctx)
}

// rollBack starts the previous version again after the new one failed; a
// side-by-side update has nothing to roll back, the old version never
// stopped.
func (a *serviceActor) rollBack(ctx actor.Context, err error) {
	u := a.update
	u.result.RolledBack, u.result.RollbackReason = true, err.Error()
	a.log.printf("the new version did not start: %v; back to the previous version", err)
	if a.inst != nil {
		a.state = stateRunning
		a.finishUpdate(ctx)
		return
	}
	u.rollback = true
	a.gen++
	a.startCandidate(ctx, u.prevRec, u.prevMan)
}

func (a *serviceActor) adoptPrevious(ctx actor.Context, inst runtimes.Instance) {
	a.rec, a.man = a.update.prevRec, a.update.prevMan
	a.running(ctx, inst)
	a.update.result.SwitchMs = time.Since(a.update.began).Milliseconds()
	a.finishUpdate(ctx)
}

// running makes inst the service's running instance and watches its end.
func (a *serviceActor) running(ctx actor.Context, inst runtimes.Instance) {
	a.gen++
	a.inst = inst
	a.state = stateRunning
	a.startedAt = time.Now()
	a.rec.LastError = ""
	a.containerID = ""
	if c, ok := inst.(interface{ ContainerID() string }); ok {
		a.containerID = c.ContainerID()
	}
	a.persist()
	gen, self, system := a.gen, ctx.Self(), ctx.ActorSystem()
	go func() {
		<-inst.Done()
		system.Root.Send(self, &instanceExited{gen: gen, err: inst.Err()})
	}()
}

func (a *serviceActor) finishUpdate(ctx actor.Context) {
	u := a.update
	a.update = nil
	a.publish(ctx)
	ctx.Send(u.replyTo, &applyDone{info: a.info(), result: u.result})
}

// refuseDuringUpdate answers the lifecycle commands that arrive while an
// update is under way, so a stop or start does not race the switch. It
// reports whether the message was answered.
func (a *serviceActor) refuseDuringUpdate(ctx actor.Context) bool {
	if a.update == nil {
		return false
	}
	switch ctx.Message().(type) {
	case *messages.StartService, *messages.StopService, *messages.RemoveService:
		ctx.Respond(errorf(Conflict, "%s is being updated by an apply; try again once it finishes", a.name))
		return true
	}
	return false
}
