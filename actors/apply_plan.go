package actors

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// applyPlan is what an apply will do, worked out by the registry once the
// manifest is decoded and before anything is fetched.
type applyPlan struct {
	result   *messages.ApplyResult
	progress func(*messages.PullProgress)
	start    bool
	// wasActive says the service ran when the apply began: it runs again
	// after, whatever the way there.
	wasActive bool
	// sideBySide says the new version starts on ports of its own beside
	// the old one.
	sideBySide bool
}

// applyWithin bounds an update in place: the old version's stop, the new
// one's start and, should it fail, the previous one's start again.
const applyWithin = stopGrace + 2*startWithin + time.Minute

// planApply compares the manifest with the service's current one. A dry
// run, and an apply that changes nothing, are answered here (done); else
// the plan goes on with the pull.
func (r *serviceRegistry) planApply(ctx actor.Context, msg *manifestDecoded) (plan *applyPlan, done bool) {
	m, req := msg.manifest, msg.pull.req
	name := m.Metadata.Name
	plan = &applyPlan{progress: msg.pull.progress, start: req.Start,
		result: &messages.ApplyResult{Action: "created", DryRun: req.DryRun}}
	e, exists := r.services[name]
	var current *messages.ServiceInfo
	if exists {
		current = e.info
		plan.wasActive = isActive(e.info.State)
		old, _ := readBounded(filepath.Join(r.home.ServiceDir(name), manifestFile), maxManifestBytes)
		changes, err := manifestChanges(old, req.ManifestYaml)
		if err != nil {
			ctx.Send(msg.sender, errorf(Invalid, "compare with the current manifest of %s: %v", name, err))
			return nil, true
		}
		plan.result.Changes = changes
		plan.result.Action = "updated"
		if len(changes) == 0 && e.info.State != stateFailed {
			plan.result.Action = "unchanged"
		}
		plan.sideBySide = plan.wasActive && sideBySidePossible(m, e.info)
	}
	if req.DryRun || plan.result.Action == "unchanged" {
		if current == nil {
			current = &messages.ServiceInfo{Name: name, Runtime: m.Spec.Runtime, State: "absent"}
		}
		plan.report()
		if !req.DryRun && req.Start && !isActive(current.State) {
			r.startApplied(ctx, e.pid, name, msg.sender)
			return nil, true
		}
		ctx.Send(msg.sender, current)
		return nil, true
	}
	return plan, false
}

// sideBySidePossible says a new version can start beside the running one:
// a wasm or container server whose host ports are all chosen by the node.
// A fixed host port cannot be held twice, a job has no port to switch, and
// an external service has no instance of fungi's to run twice.
func sideBySidePossible(m *manifest.Manifest, running *messages.ServiceInfo) bool {
	if m.Spec.Runtime == manifest.RuntimeExternal || running.Runtime != m.Spec.Runtime || len(m.Spec.Ports) == 0 {
		return false
	}
	for _, p := range m.Spec.Ports {
		if !p.HostPort.Auto {
			return false
		}
	}
	return true
}

func (p *applyPlan) report() {
	if p.progress != nil {
		p.progress(&messages.PullProgress{Message: "apply: " + p.result.Action, Apply: p.result})
	}
}

// updateInPlace hands the fetched new version to the service's actor,
// which replaces its running instance (or only its files). The name stays
// reserved until it answers.
func (r *serviceRegistry) updateInPlace(ctx actor.Context, p *pendingPull, e *registryEntry, fetched *fetchDone) {
	name := fetched.name
	r.pulling[name] = p
	rec := &serviceRecord{Name: name, Runtime: p.manifest.Spec.Runtime, Artifact: fetched.artifact, Ports: p.ports,
		DesiredState: desiredStopped, PulledAt: time.Now().UTC(), Shipped: p.shipped}
	f := ctx.RequestFuture(e.pid, &applyUpdate{raw: p.raw, rec: rec, man: p.manifest, sideBySide: p.apply.sideBySide}, applyWithin)
	ctx.ReenterAfter(f, func(res any, err error) {
		if r.pulling[name] == p {
			delete(r.pulling, name)
		}
		done, ok := res.(*applyDone)
		switch {
		case err != nil || !ok:
			ctx.Send(p.sender, errorf(Failed, "apply %s: the service did not report back within %s (%v); see `fungi service logs %s`", name, applyWithin, err, name))
		case done.err != nil:
			ctx.Send(p.sender, done.err)
		default:
			r.applied(ctx, p, done)
		}
	})
}

// applied reports a finished apply and, when asked to (or when the service
// ran before and does not now), starts it.
func (r *serviceRegistry) applied(ctx actor.Context, p *pendingPull, done *applyDone) {
	plan := p.apply
	res := plan.result
	res.Strategy, res.SwitchMs, res.RolledBack, res.RollbackReason = done.result.Strategy, done.result.SwitchMs, done.result.RolledBack, done.result.RollbackReason
	res.Note = done.result.Note
	plan.report()
	name := done.info.Name
	e, ok := r.services[name]
	if ok && !isActive(done.info.State) && (plan.start || plan.wasActive) {
		r.startApplied(ctx, e.pid, name, p.sender)
		return
	}
	ctx.Send(p.sender, done.info)
}

// startApplied starts an applied service and answers sender with how the
// start went.
func (r *serviceRegistry) startApplied(ctx actor.Context, pid *actor.PID, name string, sender *actor.PID) {
	f := ctx.RequestFuture(pid, &messages.StartService{Name: name}, startWithin+10*time.Second)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err != nil {
			ctx.Send(sender, errorf(Failed, "applied %s, but its start did not report back (%v); see `fungi service inspect %s`", name, err, name))
			return
		}
		ctx.Send(sender, res)
	})
}

// manifestChanges lists the fields that differ between two manifests, by
// their path in the YAML document (spec.image, spec.ports[0].hostPort).
func manifestChanges(oldRaw, newRaw []byte) ([]*messages.FieldChange, error) {
	var oldDoc, newDoc any
	if len(oldRaw) > 0 {
		if err := yaml.Unmarshal(oldRaw, &oldDoc); err != nil {
			oldDoc = nil // a broken stored manifest: every field is new
		}
	}
	if err := yaml.Unmarshal(newRaw, &newDoc); err != nil {
		return nil, err
	}
	oldFields, newFields := map[string]string{}, map[string]string{}
	flatten("", oldDoc, oldFields)
	flatten("", newDoc, newFields)
	var out []*messages.FieldChange
	for k, o := range oldFields {
		if n, ok := newFields[k]; !ok || n != o {
			out = append(out, &messages.FieldChange{Field: k, Old: o, New: n})
		}
	}
	for k, n := range newFields {
		if _, ok := oldFields[k]; !ok {
			out = append(out, &messages.FieldChange{Field: k, New: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out, nil
}

// maxShownValue bounds a value shown in a change; a long one is cut.
const maxShownValue = 200

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, sub, out)
		}
	case []any:
		for i, sub := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), sub, out)
		}
	case nil:
		if prefix != "" {
			out[prefix] = "null"
		}
	default:
		s := strings.ReplaceAll(fmt.Sprint(t), "\n", `\n`)
		if len(s) > maxShownValue {
			s = s[:maxShownValue] + "…"
		}
		out[prefix] = s
	}
}
