//go:build windows

package main

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/windows"
)

// terminate is not offered on Windows: there is no SIGTERM, and ending
// the process would skip the daemon's own shutdown.
func terminate(int) error { return errNoSignal }

var errNoSignal = errors.New("signals are not supported here")

// detachedAttr starts the daemon without a console of its own, apart from
// the command's.
func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
}

func killHint(pid int) string { return fmt.Sprintf("taskkill /F /PID %d", pid) }
