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
// flock, so the kernel drops it when a daemon dies however it dies.
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
	return func() { f.Close() }, nil
}

func alreadyRunning(h *home.Home) error {
	return fmt.Errorf("a fungi daemon is already running on %s; stop it first, or pass another --fungi-dir", h.Dir)
}
