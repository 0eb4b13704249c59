//go:build !linux && !darwin && !windows

package install

import (
	"fmt"
	"runtime"
)

func unsupported() error {
	return fmt.Errorf("installing a service is not supported on %s; run `fungi daemon` from the system's own service manager", runtime.GOOS)
}

// Install is not supported here.
func Install(Spec) (Result, error) { return Result{}, unsupported() }

// Uninstall is not supported here.
func Uninstall(Spec) (Result, error) { return Result{}, unsupported() }

// StatusOf is not supported here.
func StatusOf(Spec) (Status, error) { return Status{}, unsupported() }

// Control is not supported here.
func Control(Spec, string) error { return unsupported() }

// Managed is false here: no service manager is known.
func Managed(Spec) bool { return false }

// Startable is false here: no service manager is known.
func Startable(Spec) bool { return false }
