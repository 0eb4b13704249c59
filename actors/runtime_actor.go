package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// runtimeActor owns one runtime provider. It hands each slow provider call
// to a goroutine and sends the result to whoever asked, so a pull of a large
// artifact never holds up a start of another service.
type runtimeActor struct {
	provider runtimes.Provider
}

func runtimeProps(p runtimes.Provider) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &runtimeActor{provider: p} },
		actor.WithSupervisor(actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider)))
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
		art, err := a.provider.Fetch(context.Background(), msg.req, msg.progress)
		system.Root.Send(msg.replyTo, &fetchDone{name: msg.name, artifact: art, err: err})
	}()
}

func (a *runtimeActor) start(ctx actor.Context, msg *startInstance) {
	system := ctx.ActorSystem()
	go func() {
		inst, err := a.provider.Start(context.Background(), msg.spec)
		system.Root.Send(msg.replyTo, &instanceStarted{gen: msg.gen, inst: inst, err: err})
	}()
}

func (a *runtimeActor) remove(ctx actor.Context, msg *removeInstance) {
	system := ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		system.Root.Send(msg.replyTo, &runtimeRemoved{err: a.provider.Remove(c, msg.name)})
	}()
}
