package daemon

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names a file the daemon writes a CPU profile of its whole
// run to: opt-in, for measuring the daemon as users run it (the access
// benchmark with two daemons sets it through FUNGI_BENCH_CPUPROFILE).
const cpuProfileEnv = "FUNGI_CPUPROFILE"

// startCPUProfile starts the profile FUNGI_CPUPROFILE asks for; the
// returned function stops it and closes the file. A profile that cannot
// be written is reported and the daemon runs without it.
func startCPUProfile(logf func(string, ...any)) func() {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		logf("%s", fmt.Sprintf("%s=%s: no CPU profile: %v", cpuProfileEnv, path, err))
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
