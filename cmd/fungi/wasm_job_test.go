package main

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/testutil"
)

// trappingModule is a preview 1 command module whose _start executes
// `unreachable`: the smallest job that traps.
var trappingModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: func() -> ()
	0x03, 0x02, 0x01, 0x00, // one function of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export _start
	0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: no locals, unreachable, end
}

// buildwasm PKG FILE builds the repository's package PKG for wasip1 into
// FILE; buildwasm trap FILE writes a module whose _start traps.
func cmdBuildWasm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: buildwasm PKG|trap FILE")
	}
	out := ts.MkAbs(args[1])
	if args[0] == "trap" {
		ts.Check(os.WriteFile(out, trappingModule, 0o644))
		return
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./"+filepath.ToSlash(args[0]))
	cmd.Dir = testutil.RepoRoot()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("build %s for wasip1: %v\n%s", args[0], err, msg)
	}
}
