//go:build !windows

package main

import (
	"fmt"
	"syscall"
)

// terminate sends SIGTERM: the daemon's signal handler stops it in order.
func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// detachedAttr starts the daemon in a session of its own, so closing the
// terminal (SIGHUP to its session) does not reach it.
func detachedAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func killHint(pid int) string { return fmt.Sprintf("kill -KILL %d", pid) }
