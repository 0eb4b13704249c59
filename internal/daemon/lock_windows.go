//go:build windows

package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"

	"github.com/fungi-go/fungi/internal/home"
)

// lockHome makes sure one daemon at a time runs on a home: an exclusive
// LockFileEx on daemon.lock, which Windows releases when the process ends
// however it ends.
func lockHome(h *home.Home) (func(), error) {
	f, err := os.OpenFile(h.LockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, fmt.Errorf("a fungi daemon is already running on %s; stop it first, or pass another --fungi-dir", h.Dir)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
