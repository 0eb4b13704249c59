//go:build !unix

package maxprocs

import "time"

// processCPU is not read on this system: the controller decides on the
// scheduling latency alone.
func processCPU() (time.Duration, bool) { return 0, false }
