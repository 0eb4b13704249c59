package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// Deadlines of the provider calls. Each is shorter than the API's own wait
// for the same command, so the caller hears the reason rather than a bare
// timeout.
const (
	fetchWithin  = 25 * time.Minute
	startWithin  = 90 * time.Second
	removeWithin = time.Minute
)

// runtimeActor owns one runtime provider. It hands each slow provider call
// to a goroutine and sends the result to whoever asked, so a pull of a large
// artifact never holds up a start of another service.
type runtimeActor struct {
	provider runtimes.Provider
}

func runtimeProps(p runtimes.Provider) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &runtimeActor{provider: p} }, supervision())
}

func (a *runtimeActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.RuntimesRequest:
		a.capability(ctx)
	case *fetchArtifact:
		a.fetch(ctx, msg)
	case *startInstance:
		a.start(ctx, msg)
	case *removeInstance:
		a.remove(ctx, msg)
	case *setAllowedMounts:
		// Providers that check mounts themselves (docker's guard) take the
		// new list for the instances they create next.
		if p, ok := a.provider.(interface{ SetAllowedMounts([]string) }); ok {
			p.SetAllowedMounts(msg.allowed)
		}
	}
}

func (a *runtimeActor) capability(ctx actor.Context) {
	sender, system := ctx.Sender(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		system.Root.Send(sender, a.provider.Capability(c))
	}()
}

func (a *runtimeActor) fetch(ctx actor.Context, msg *fetchArtifact) {
	system := ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), fetchWithin)
		defer cancel()
		var art runtimes.Artifact
		err := guard(func() (err error) {
			art, err = a.provider.Fetch(c, msg.req, msg.progress)
			return err
		})
		system.Root.Send(msg.replyTo, &fetchDone{name: msg.name, artifact: art, err: err})
	}()
}

func (a *runtimeActor) start(ctx actor.Context, msg *startInstance) {
	system := ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), startWithin)
		defer cancel()
		var inst runtimes.Instance
		err := guard(func() (err error) {
			inst, err = a.provider.Start(c, msg.spec)
			return err
		})
		if err != nil && c.Err() != nil {
			err = fmt.Errorf("%w (the %s runtime did not start it within %s)", err, a.provider.Runtime(), startWithin)
		}
		system.Root.Send(msg.replyTo, &instanceStarted{gen: msg.gen, inst: inst, err: err})
	}()
}

func (a *runtimeActor) remove(ctx actor.Context, msg *removeInstance) {
	system := ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), removeWithin)
		defer cancel()
		err := guard(func() error { return a.provider.Remove(c, msg.name) })
		system.Root.Send(msg.replyTo, &runtimeRemoved{err: err})
	}()
}

// guard runs a provider call in a goroutine of the runtime actor's own: a
// panic there would end the daemon and every service with it, so it becomes
// the call's error, and whoever asked still gets an answer.
func guard(call func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the runtime panicked: %v (a bug in fungi; please report it)", p)
		}
	}()
	return call()
}
