//go:build unix

package maxprocs

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has run, user and system, all
// threads; ok is false where the system does not say.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
