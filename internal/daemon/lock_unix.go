//go:build !windows

package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/fungi-go/fungi/internal/home"
)

// lockHome makes sure one daemon at a time runs on a home. The lock is an
// flock, so the kernel drops it when a daemon dies however it dies. The
// file holds the daemon's PID, for `fungi daemon stop` when the API does
// not answer and for anyone looking.
func lockHome(h *home.Home) (func(), error) {
	f, err := os.OpenFile(h.LockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, alreadyRunning(h)
		}
		return nil, err
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("write the PID into %s: %w", h.LockPath(), err)
	}
	return func() { f.Close() }, nil
}

// Running reports whether a daemon holds the home's lock, and its PID as
// it wrote it (0 when unknown). A lock nobody holds means no daemon runs,
// whatever PID a dead daemon left in the file.
func Running(h *home.Home) (pid int, running bool, err error) {
	f, err := os.Open(h.LockPath())
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false, nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return 0, false, err
	}
	return readPID(f), true, nil
}

func alreadyRunning(h *home.Home) error {
	return fmt.Errorf("a fungi daemon is already running on %s; stop it first (`fungi daemon stop`), or pass another --fungi-dir", h.Dir)
}
