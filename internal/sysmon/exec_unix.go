//go:build unix

package sysmon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// KeepAwake re-executes this program, with the same arguments and process
// ID, with Setting in GODEBUG, unless GODEBUG already sets schedtrace. It
// returns only when it did not: nil when nothing was needed, else why not
// (the program then goes on as it is). Call it first thing, before the
// program opens anything it would not want to open twice.
//
// A test binary under its own name (…/pkg.test) is never re-executed: a
// test that runs a daemon in its own process would start the tests again.
// Run as a command by a test script, it is, as the real binary is.
func KeepAwake() error {
	env, changed := withSetting(os.Environ())
	if !changed || strings.HasSuffix(filepath.Base(os.Args[0]), ".test") {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("keep the runtime's monitor awake: %w", err)
	}
	return fmt.Errorf("keep the runtime's monitor awake: %w", syscall.Exec(exe, os.Args, env))
}
