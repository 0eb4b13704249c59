//go:build !unix

package sysmon

// KeepAwake does nothing where a process cannot replace itself (Windows):
// the runtime's monitor sleeps as it does by default.
func KeepAwake() error { return nil }
