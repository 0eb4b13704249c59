// Package testutil builds the artifacts tests run (wasm guests compiled by
// the Go toolchain) and waits on conditions with deadlines.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BuildWasm compiles the Go package at pkg (relative to the repository
// root) for wasip1 once per test process and returns the .wasm path.
func BuildWasm(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "fungi-wasm-")
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg)+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./"+pkg)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s for wasip1: %v\n%s", pkg, err, msg)
	}
	built[pkg] = out
	return out
}

// WaitFor polls cond until it returns nil or the deadline passes, and then
// fails with cond's last error.
func WaitFor(tb testing.TB, within time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Poll(within, cond); err != nil {
		tb.Fatalf("waited %s for %s: %v", within, what, err)
	}
}

// Poll is WaitFor without a testing.TB.
func Poll(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (deadline passed)", err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// ExampleImage is the tag `make images` gives the example app's image.
const ExampleImage = "fungi-examples/filebrowser-lite:latest"

var imageOnce sync.Once
var imageErr error

// BuildExampleImage builds the example app's FROM scratch image in the real
// engine once per test process, as `make images` does.
func BuildExampleImage(tb testing.TB) string {
	tb.Helper()
	imageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fungi-image-")
		if err != nil {
			imageErr = err
			return
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "filebrowser-lite"), "./examples/apps/filebrowser-lite")
		build.Dir = RepoRoot()
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			imageErr = fmt.Errorf("build the app: %v\n%s", err, out)
			return
		}
		df, _ := os.ReadFile(filepath.Join(RepoRoot(), "examples/apps/filebrowser-lite/Dockerfile"))
		os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644)
		if out, err := exec.Command("docker", "build", "-q", "-t", ExampleImage, dir).CombinedOutput(); err != nil {
			imageErr = fmt.Errorf("docker build: %v\n%s", err, out)
		}
	})
	if imageErr != nil {
		tb.Fatal(imageErr)
	}
	return ExampleImage
}

// DockerAvailable reports whether an engine answers the docker CLI. With
// FUNGI_REQUIRE_DOCKER=1 a missing engine is a failure, not a skip.
func DockerAvailable(tb testing.TB) bool {
	err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run()
	if err != nil && os.Getenv("FUNGI_REQUIRE_DOCKER") == "1" {
		tb.Fatalf("FUNGI_REQUIRE_DOCKER=1 but no Docker engine answers: %v", err)
	}
	return err == nil
}

// TrapModule is a preview 1 command module whose _start executes
// `unreachable`: the smallest job that traps.
var TrapModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: func() -> ()
	0x03, 0x02, 0x01, 0x00, // one function of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export _start
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: no locals, unreachable, end
}
