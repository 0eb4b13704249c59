package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// jobWithin bounds how long a test job may take to end.
const jobWithin = 30 * time.Second

// startJob pulls the module at wasmPath and starts it with no ports, which
// makes it a job.
func startJob(t *testing.T, wasmPath string, m *manifest.Manifest, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	t.Helper()
	p := New(DefaultConfig(sharedCache))
	t.Cleanup(func() { p.Close(context.Background()) })
	m.Spec.Source.File = wasmPath
	m.Spec.Ports = nil
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	spec.Name, spec.Manifest, spec.Artifact = m.Metadata.Name, m, art
	inst, err := p.Start(context.Background(), spec)
	if inst != nil {
		t.Cleanup(func() { inst.Stop(context.Background()) })
	}
	return inst, err
}

func waitJob(t *testing.T, inst runtimes.Instance, log *testutil.SyncBuffer) error {
	t.Helper()
	select {
	case <-inst.Done():
		return inst.Err()
	case <-time.After(jobWithin):
		t.Fatalf("the job did not end within %s; its log:\n%s", jobWithin, log)
		return nil
	}
}

// TestModuleJob runs a preview1 command module with no ports: it runs
// once, reads spec.stdin from the data folder, cannot change a read-only
// mount, writes into a writable one, and its exit code is the instance's
// end; its output is in the service log.
func TestModuleJob(t *testing.T) {
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/job")
	data := t.TempDir()
	ro, rw := filepath.Join(data, "ro"), filepath.Join(data, "rw")
	for _, d := range []string{ro, rw} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("reference"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "input.txt"), []byte("batch input"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := testManifest("", map[string]string{"EXIT_CODE": "3"})
	m.Spec.Stdin = "input.txt"
	log := &testutil.SyncBuffer{}
	inst, err := startJob(t, wasmPath, m, runtimes.InstanceSpec{Log: log, DataDir: data, Mounts: []manifest.ResolvedMount{
		{HostPath: ro, RuntimePath: "/ro", ReadOnly: true},
		{HostPath: rw, RuntimePath: "/rw"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var exit *JobExit
	if err := waitJob(t, inst, log); !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("the job ended with %v, want exit code 3; its log:\n%s", err, log)
	}
	out := log.String()
	for _, want := range []string{
		"(module, WASI preview 1) started as a job",
		`stdin: "batch input" <nil>`,
		"a line on stderr",
		`read-only mount holds: "reference"`,
		"read-only create: open /ro/new.txt: Read-only file system",
		"read-only write: open /ro/in.txt: Read-only file system",
		"read-only mkdir: mkdir /ro/dir: Read-only file system",
		"read-only remove: remove /ro/in.txt: Read-only file system",
		"the job exited with code 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rw, "out.txt")); err != nil || string(b) != "got batch input" {
		t.Errorf("/rw/out.txt holds %q (%v), want \"got batch input\"", b, err)
	}
	entries, _ := os.ReadDir(ro)
	if len(entries) != 1 {
		t.Errorf("the read-only folder holds %d entries, want only in.txt", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(ro, "in.txt")); string(b) != "reference" {
		t.Errorf("the read-only in.txt now holds %q", b)
	}
}

// TestModuleJobExitZero checks that a job that exits 0 without stdin
// ends with code 0 and reads end of file at once.
func TestModuleJobExitZero(t *testing.T) {
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/job")
	log := &testutil.SyncBuffer{}
	inst, err := startJob(t, wasmPath, testManifest("", nil), runtimes.InstanceSpec{Log: log, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var exit *JobExit
	if err := waitJob(t, inst, log); !errors.As(err, &exit) || exit.Code != 0 {
		t.Fatalf("the job ended with %v, want exit code 0; its log:\n%s", err, log)
	}
	if !strings.Contains(log.String(), `stdin: "" <nil>`) {
		t.Errorf("the job did not read an empty stdin:\n%s", log)
	}
}

// TestModuleJobTrap checks that a trapping job is reported as a trap with
// exit code 134, never as a clean exit 0.
func TestModuleJobTrap(t *testing.T) {
	wasmPath := filepath.Join(t.TempDir(), "trap.wasm")
	if err := os.WriteFile(wasmPath, testutil.TrapModule, 0o644); err != nil {
		t.Fatal(err)
	}
	log := &testutil.SyncBuffer{}
	inst, err := startJob(t, wasmPath, testManifest("", nil), runtimes.InstanceSpec{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	err = waitJob(t, inst, log)
	var trap *JobTrap
	if !errors.As(err, &trap) {
		t.Fatalf("the job ended with %v, want a trap; its log:\n%s", err, log)
	}
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != TrapExitCode {
		t.Errorf("a trap's exit code is not %d: %v", TrapExitCode, err)
	}
	if !strings.Contains(err.Error(), "the job trapped") || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("the trap reads %q, want it to say the job trapped at unreachable", err)
	}
	if !strings.Contains(log.String(), "the job trapped") {
		t.Errorf("the log does not say the job trapped:\n%s", log)
	}
}

// TestModuleJobStdinRefused checks that a stdin file missing from the
// data folder, or reached through a link out of it, stops the start with
// a message naming spec.stdin.
func TestModuleJobStdinRefused(t *testing.T) {
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/job")
	data, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(data, "link.txt")); err != nil {
		t.Fatal(err)
	}
	for stdin, want := range map[string]string{
		"missing.txt": "spec.stdin: missing.txt cannot be read from the service's data folder",
		"link.txt":    "spec.stdin: link.txt cannot be read from the service's data folder",
	} {
		m := testManifest("", nil)
		m.Spec.Stdin = stdin
		_, err := startJob(t, wasmPath, m, runtimes.InstanceSpec{Log: &testutil.SyncBuffer{}, DataDir: data})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("stdin %s: start answered %v, want %q", stdin, err, want)
		}
	}
}
