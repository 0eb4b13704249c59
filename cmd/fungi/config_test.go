package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

// sighup DIR sends SIGHUP to the daemon of the home DIR: the process that
// holds DIR/daemon.lock open (testscript's kill knows no SIGHUP).
func cmdSighup(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sighup DIR")
	}
	lock := filepath.Join(ts.MkAbs(args[0]), "daemon.lock")
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if target, err := os.Readlink(fd); err != nil || target != lock {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(fd))))
		if err != nil {
			continue
		}
		ts.Check(syscall.Kill(pid, syscall.SIGHUP))
		return
	}
	ts.Fatalf("no process holds %s", lock)
}
