package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/fungi-go/fungi/internal/sysmon"
)

// `fungi daemon` runs with the runtime's monitor kept awake: it replaced
// itself (same process ID) with GODEBUG set, and a user's own schedtrace
// is left as it is.
func TestDaemonKeepsTheRuntimeMonitorAwake(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	fungi, err := exec.LookPath("fungi") // the test binary as fungi, put on PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	d := benchDaemon(t, fungi, "sysmon", "/ip4/127.0.0.1/tcp/0")
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.daemon.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("GODEBUG=" + sysmon.Setting + "\x00")
	if !bytes.Contains(environ, want) {
		t.Fatalf("the daemon's environment has no %q", want)
	}

	t.Setenv("GODEBUG", "schedtrace=0")
	d = benchDaemon(t, fungi, "sysmon-off", "/ip4/127.0.0.1/tcp/0")
	environ, err = os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.daemon.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(environ, []byte("GODEBUG=schedtrace=0\x00")) || bytes.Contains(environ, want) {
		t.Fatalf("a user's GODEBUG=schedtrace=0 was not kept: %q", bytes.ReplaceAll(environ, []byte{0}, []byte{' '}))
	}
}
