package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Restart limits of supervision: a child that fails more than
// supervisionRetries times within supervisionWithin is stopped instead of
// restarted, so a bug that fires at every start does not spin.
const (
	supervisionRetries = 10
	supervisionWithin  = time.Minute
)

// supervision is the one strategy of the actors that have children: a child
// that panics is restarted in place, keeping its PID, so those who hold it
// keep reaching it; its new instance rebuilds its state from disk on
// Started. Only the failing child is restarted: its siblings own unrelated
// state.
func supervision() actor.PropsOption {
	return actor.WithSupervisor(actor.NewOneForOneStrategy(supervisionRetries, supervisionWithin, actor.DefaultDecider))
}
