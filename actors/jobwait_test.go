package actors

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// codedExit is how a job ends with an exit code.
type codedExit struct{ code int }

func (e codedExit) Error() string { return fmt.Sprintf("the job exited with code %d", e.code) }
func (e codedExit) ExitCode() int { return e.code }

// TestStopKeepsTheLastExitOfACrashLoop stops a crash-looping service while
// a restart of it runs: its last exit code and error stay for the owner to
// read, until a start by hand clears them.
func TestStopKeepsTheLastExitOfACrashLoop(t *testing.T) {
	shortBackoff(t, 10*time.Millisecond, 10*time.Millisecond)
	n, p := startTestNode(t, "on-failure")
	p.end("svc", codedExit{3})
	testutil.WaitFor(t, 10*time.Second, "the restart to run", func() error {
		if info := inspect(t, n); p.startCount("svc") != 2 || info.State != stateRunning {
			return fmt.Errorf("starts %d, state %s", p.startCount("svc"), info.State)
		}
		return nil
	})
	if _, err := n.StopService(&messages.StopService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	info := inspect(t, n)
	if info.State != stateStopped || info.ExitCode != 3 || !strings.Contains(info.LastError, "exited with code 3") {
		t.Fatalf("after the stop: state %s, exit code %d, last error %q; want stopped, 3 and the exit", info.State, info.ExitCode, info.LastError)
	}
	if _, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	if info := inspect(t, n); info.ExitCode != 0 || info.LastError != "" {
		t.Fatalf("a start by hand kept exit code %d and last error %q", info.ExitCode, info.LastError)
	}
}

// TestStartWaitAnswersWhenTheRunEnds asks for a start with wait: no answer
// while the job runs, then the service as it ended, with its exit code.
func TestStartWaitAnswersWhenTheRunEnds(t *testing.T) {
	p := &fakeProvider{}
	n := newTestNode(t, &home.Home{Dir: t.TempDir()}, p)
	pullTestService(t, n, "svc", "never", "")
	answered := make(chan any, 1)
	go func() {
		res, err := n.StartService(&messages.StartService{Name: "svc", Wait: true}, answerWithin)
		if err != nil {
			answered <- err
			return
		}
		answered <- res
	}()
	testutil.WaitFor(t, 10*time.Second, "the job to run", func() error {
		if info := inspect(t, n); info.State != stateRunning {
			return fmt.Errorf("state %s", info.State)
		}
		return nil
	})
	select {
	case res := <-answered:
		t.Fatalf("start --wait answered while the job runs: %v", res)
	default:
	}
	p.end("svc", codedExit{5})
	res := <-answered
	info, ok := res.(*messages.ServiceInfo)
	if !ok {
		t.Fatalf("start --wait answered %v", res)
	}
	if info.State != stateFailed || info.ExitCode != 5 {
		t.Fatalf("start --wait answered state %s, exit code %d; want failed, 5", info.State, info.ExitCode)
	}
}
