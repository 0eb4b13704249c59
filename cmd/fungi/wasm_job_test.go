package main

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/testutil"
)

// buildwasm PKG FILE builds the repository's package PKG for wasip1 into
// FILE; buildwasm trap FILE writes a module whose _start traps.
func cmdBuildWasm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: buildwasm PKG|trap FILE")
	}
	out := ts.MkAbs(args[1])
	if args[0] == "trap" {
		ts.Check(os.WriteFile(out, testutil.TrapModule, 0o644))
		return
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./"+filepath.ToSlash(args[0]))
	cmd.Dir = testutil.RepoRoot()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("build %s for wasip1: %v\n%s", args[0], err, msg)
	}
}
