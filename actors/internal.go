package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// pullService asks the registry to register a service. progress is called
// from the fetching goroutine with each step; it must be safe to call from
// any goroutine.
type pullService struct {
	req      *messages.PullServiceRequest
	progress func(*messages.PullProgress)
}

// fetchArtifact asks a runtime actor to fetch an artifact; the answer,
// fetchDone, goes to replyTo.
type fetchArtifact struct {
	name     string
	req      runtimes.FetchRequest
	progress func(*messages.PullProgress)
	replyTo  *actor.PID
}

type fetchDone struct {
	name     string
	artifact runtimes.Artifact
	err      error
}

// startInstance asks a runtime actor to start a service; the answer,
// instanceStarted, goes to replyTo.
type startInstance struct {
	gen     uint64
	spec    runtimes.InstanceSpec
	replyTo *actor.PID
}

type instanceStarted struct {
	gen  uint64
	inst runtimes.Instance
	err  error
}

// instanceExited says a running instance ended on its own.
type instanceExited struct {
	gen uint64
	err error
}

// instanceStopped says a Stop the actor asked for has finished.
type instanceStopped struct {
	gen uint64
}

// restartDue fires after the restart backoff of a failed service.
type restartDue struct {
	gen uint64
}

// serviceChanged tells the registry a service's new state, so that list
// never has to ask every service actor.
type serviceChanged struct {
	info *messages.ServiceInfo
}

// serviceRemoved is a service actor's answer to RemoveService once its
// instance is down.
type serviceRemoved struct {
	info *messages.ServiceInfo
	err  error
}

// removeInstance asks a runtime actor to delete what the runtime keeps of a
// service; the answer, runtimeRemoved, goes to replyTo.
type removeInstance struct {
	name    string
	replyTo *actor.PID
}

type runtimeRemoved struct{ err error }
