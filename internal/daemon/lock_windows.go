//go:build windows

package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"

	"github.com/fungi-go/fungi/internal/home"
)

// lockOverlapped places the lock on one byte at 4 GiB, past the PID the
// file holds: a locked range cannot be read by other processes, and the
// PID at offset 0 must stay readable.
func lockOverlapped() *windows.Overlapped { return &windows.Overlapped{OffsetHigh: 1} }

// lockHome makes sure one daemon at a time runs on a home: an exclusive
// LockFileEx on daemon.lock, which Windows releases when the process ends
// however it ends. The file holds the daemon's PID.
func lockHome(h *home.Home) (func(), error) {
	f, err := os.OpenFile(h.LockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, lockOverlapped())
	if err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, fmt.Errorf("a fungi daemon is already running on %s; stop it first (`fungi daemon stop`), or pass another --fungi-dir", h.Dir)
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
// it wrote it (0 when unknown).
func Running(h *home.Home) (pid int, running bool, err error) {
	f, err := os.Open(h.LockPath())
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	ol := lockOverlapped()
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err == nil {
		windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
		return 0, false, nil
	}
	if !errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return 0, false, err
	}
	return readPID(f), true, nil
}
