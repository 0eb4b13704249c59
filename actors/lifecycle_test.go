package actors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// answerWithin bounds how long a test waits for a command's answer. The
// answers these tests expect come from the service actor's own mailbox; an
// answer that never comes fails the test instead of hanging it.
const answerWithin = 5 * time.Second

// savedRecord reads the service's state.json as the next daemon would.
func savedRecord(t *testing.T, h *home.Home, name string) *serviceRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.ServiceDir(name), stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec serviceRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("state.json: %v\n%s", err, data)
	}
	return &rec
}

func actorError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want the service's own answer, got %v", err)
	}
	return e
}

// A start refused before the runtime is asked (a mount that leads out of the
// data folder through a link) is answered at once with the reason, and the
// desired state on disk does not become running.
func TestStartRefusedForAMountIsAnsweredAtOnce(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	n := newTestNode(t, h, &fakeProvider{})
	pullTestService(t, n, "svc", "always", "  mounts: [{hostPath: \"${APP_HOME}/data\", runtimePath: /data}]\n")
	if err := os.Symlink(t.TempDir(), filepath.Join(h.DataDir("svc"), "data")); err != nil {
		t.Fatal(err)
	}

	_, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin)
	e := actorError(t, err)
	if !strings.Contains(e.Msg, "svc did not start") || !strings.Contains(e.Msg, "outside the service's data folder") {
		t.Fatalf("the answer does not say why: %q", e.Msg)
	}
	if rec := savedRecord(t, h, "svc"); rec.DesiredState != desiredStopped {
		t.Fatalf("saved desired state %q after a refused start, want stopped", rec.DesiredState)
	}
	info := inspect(t, n)
	if info.State != stateFailed || info.DesiredState != desiredStopped || !strings.Contains(info.LastError, "outside the service's data folder") {
		t.Fatalf("inspect: state %s, desired %s, last error %q", info.State, info.DesiredState, info.LastError)
	}
}

// A service whose runtime this node does not have (here: the node came back
// without it) gets its start answered at once, saying so.
func TestStartWithoutTheRuntimeIsAnsweredAtOnce(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{&fakeProvider{}}})
	if err != nil {
		t.Fatal(err)
	}
	pullTestService(t, n, "svc", "always", "")
	n.Stop()

	n2 := newTestNode(t, h, &fakeProvider{runtime: "docker"})
	_, err = n2.StartService(&messages.StartService{Name: "svc"}, answerWithin)
	e := actorError(t, err)
	if !strings.Contains(e.Msg, "this node has no wasmtime runtime (see `fungi info runtimes`)") {
		t.Fatalf("the answer does not say why: %q", e.Msg)
	}
	if rec := savedRecord(t, h, "svc"); rec.DesiredState != desiredStopped {
		t.Fatalf("saved desired state %q after a refused start, want stopped", rec.DesiredState)
	}
}

// A start the runtime fails (an engine that is not up yet) is answered at
// once with the reason, and then tried again with the restart backoff,
// showing failed between tries, until the engine is there.
func TestFailedStartIsRetriedUntilTheEngineComesUp(t *testing.T) {
	shortBackoff(t, 20*time.Millisecond, 80*time.Millisecond)
	h := &home.Home{Dir: t.TempDir()}
	p := &fakeProvider{}
	n := newTestNode(t, h, p)
	pullTestService(t, n, "svc", "on-failure", "")
	p.setDown("svc", errors.New("no Docker engine answers"))

	_, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin)
	e := actorError(t, err)
	if !strings.Contains(e.Msg, "svc did not start: no Docker engine answers; trying again in 20ms") || !strings.Contains(e.Msg, "fungi service stop svc") {
		t.Fatalf("the answer does not say why and what comes next: %q", e.Msg)
	}
	if rec := savedRecord(t, h, "svc"); rec.DesiredState != desiredRunning {
		t.Fatalf("saved desired state %q, want running: the start is being retried", rec.DesiredState)
	}
	testutil.WaitFor(t, 10*time.Second, "four tries, failed between them", func() error {
		info := inspect(t, n)
		if p.startCount("svc") < 4 {
			return fmt.Errorf("%d tries", p.startCount("svc"))
		}
		if info.State != stateFailed || !strings.Contains(info.LastError, "no Docker engine answers") {
			return fmt.Errorf("state %s, last error %q", info.State, info.LastError)
		}
		return nil
	})
	p.setDown("svc", nil)
	testutil.WaitFor(t, 10*time.Second, "the service to run once the engine is up", func() error {
		if info := inspect(t, n); info.State != stateRunning || info.LastError != "" {
			return fmt.Errorf("state %s, last error %q", info.State, info.LastError)
		}
		return nil
	})
	log, _ := os.ReadFile(h.ServiceLog("svc"))
	for _, wait := range []string{"20ms", "40ms", "80ms"} {
		if !strings.Contains(string(log), "restarting in "+wait) {
			t.Fatalf("the backoff did not double to %s, log:\n%s", wait, log)
		}
	}
}

// Stop ends the tries of a failing start: a second service failing the
// same way, started after the stop, is tried three times over meanwhile.
func TestStopCancelsTheTriesOfAFailedStart(t *testing.T) {
	shortBackoff(t, cancelBackoff, cancelBackoff)
	p := &fakeProvider{}
	n := newTestNode(t, &home.Home{Dir: t.TempDir()}, p)
	for _, name := range []string{"svc", "witness"} {
		pullTestService(t, n, name, "always", "")
		p.setDown(name, errors.New("engine down"))
	}
	if _, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin); err == nil {
		t.Fatal("the start worked with the engine down")
	}
	if _, err := n.StopService(&messages.StopService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	triesAtStop := p.startCount("svc")
	if _, err := n.StartService(&messages.StartService{Name: "witness"}, answerWithin); err == nil {
		t.Fatal("the start worked with the engine down")
	}
	testutil.WaitFor(t, 10*time.Second, "the witness to be tried three more times", func() error {
		if got := p.startCount("witness"); got < 4 {
			return fmt.Errorf("%d tries", got)
		}
		return nil
	})
	info := inspect(t, n)
	if p.startCount("svc") != triesAtStop || info.State != stateStopped || info.DesiredState != desiredStopped {
		t.Fatalf("the stopped service was tried again: %d tries, %d at the stop, state %s, desired %s", p.startCount("svc"), triesAtStop, info.State, info.DesiredState)
	}
}

// A service whose manifest on disk no longer decodes loads as failed with
// the decoder's line and column; start says so, and stop, inspect, list and
// remove work without writing an empty record over state.json.
func TestServiceWithBrokenManifestLoadsFailed(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	p := &fakeProvider{}
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	pullTestService(t, n, "svc", "always", "")
	if _, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	before := savedRecord(t, h, "svc")
	manifestPath := filepath.Join(h.ServiceDir("svc"), manifestFile)
	raw, _ := os.ReadFile(manifestPath)
	// An edit by hand: a field this version does not know, on line 9.
	if err := os.WriteFile(manifestPath, append(raw, "  restartDelay: 5s\n"...), 0o600); err != nil {
		t.Fatal(err)
	}

	n2 := newTestNode(t, h, p)
	testutil.WaitFor(t, 5*time.Second, "the service listed as failed", func() error {
		res, err := n2.ListServices(answerWithin)
		if err != nil {
			return err
		}
		list := res.Services
		if len(list) != 1 || list[0].State != stateFailed || !strings.Contains(list[0].LastError, "line 9, column 3") {
			return fmt.Errorf("list: %v", list)
		}
		return nil
	})
	_, err = n2.StartService(&messages.StartService{Name: "svc"}, answerWithin)
	e := actorError(t, err)
	if !strings.Contains(e.Msg, "line 9, column 3") || !strings.Contains(e.Msg, "restartDelay") || !strings.Contains(e.Msg, "fungi service pull") {
		t.Fatalf("start does not give the decoder's error and what to do: %q", e.Msg)
	}
	if p.startCount("svc") != 1 {
		t.Fatalf("a service with a broken manifest was started")
	}
	if _, err := n2.StopService(&messages.StopService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	after := savedRecord(t, h, "svc")
	if after.Name != "svc" || after.Artifact != before.Artifact || len(after.Ports) != 1 || after.Ports[0] != before.Ports[0] || !after.PulledAt.Equal(before.PulledAt) {
		t.Fatalf("stop rewrote the record: before %+v, after %+v", before, after)
	}
	if info := inspect(t, n2); info.State != stateFailed || len(info.Ports) != 1 || info.Ports[0].HostPort != uint32(before.Ports[0].HostPort) {
		t.Fatalf("inspect: %v", info)
	}
	if _, err := n2.RemoveService(&messages.RemoveService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.ServiceDir("svc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the service folder is still there: %v", err)
	}
}

// A state.json that does not decode is never written over: not by the
// failed start, not by stop.
func TestServiceWithBrokenRecordIsNeverOverwritten(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	p := &fakeProvider{}
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	pullTestService(t, n, "svc", "always", "")
	n.Stop()
	statePath := filepath.Join(h.ServiceDir("svc"), stateFile)
	raw, _ := os.ReadFile(statePath)
	torn := raw[:len(raw)/2]
	if err := os.WriteFile(statePath, torn, 0o600); err != nil {
		t.Fatal(err)
	}

	n2 := newTestNode(t, h, p)
	_, err = n2.StartService(&messages.StartService{Name: "svc"}, answerWithin)
	if e := actorError(t, err); !strings.Contains(e.Msg, "state.json") {
		t.Fatalf("start does not name the broken file: %q", e.Msg)
	}
	if _, err := n2.StopService(&messages.StopService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	if info := inspect(t, n2); info.State != stateFailed || !strings.Contains(info.LastError, "state.json") {
		t.Fatalf("inspect: state %s, last error %q", info.State, info.LastError)
	}
	if got, _ := os.ReadFile(statePath); string(got) != string(torn) {
		t.Fatalf("state.json was overwritten with %q", got)
	}
}
