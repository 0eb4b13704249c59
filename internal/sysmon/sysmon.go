// Package sysmon keeps the Go runtime's system monitor thread out of deep
// sleep in a long-running daemon, where that sleep costs a thread wake-up
// on every burst of work.
//
// The runtime's monitor (sysmon) sleeps deeply whenever every P is idle,
// and the first goroutine to enter a system call afterwards wakes it and
// resets it to polling every 20 µs. A daemon that forwards one request at
// a time goes idle between every message, so each message pays a futex
// wake-up of the monitor and several 20 µs polls: measured on the access
// path (two daemons, kept connection), 1.7 of the forwarder's ~3.8 thread
// switches per round trip. With the scheduler trace on, the monitor never
// sleeps deeply: it backs off to one poll per 10 ms while nothing needs it,
// which is what the runtime does on a busy process anyway. The trace's
// period is the longest GODEBUG allows (2^31-1 ms, 24.8 days), so it prints
// a line starting with "SCHED" to standard error at most that often (and
// once at start on a machine up for longer than that).
//
// GODEBUG is read when the runtime starts, so KeepAwake re-executes the
// program with it set. A user's own schedtrace (schedtrace=0 included) is
// left alone: it is the way to turn this off.
package sysmon

import "strings"

// Setting is the GODEBUG setting KeepAwake adds.
const Setting = "schedtrace=2147483647"

// withSetting is env with Setting added to GODEBUG, and whether that
// changed it: not when GODEBUG already sets schedtrace.
func withSetting(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for _, s := range strings.Split(v, ",") {
			if strings.HasPrefix(s, "schedtrace=") {
				return env, false
			}
		}
		found = true
		if v != "" {
			v += ","
		}
		out = append(out, "GODEBUG="+v+Setting)
	}
	if !found {
		out = append(out, "GODEBUG="+Setting)
	}
	return out, true
}
