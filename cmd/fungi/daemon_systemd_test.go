//go:build linux

package main

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/install"
	"github.com/fungi-go/fungi/internal/testutil"
)

// TestDaemonUnderSystemd drives `fungi daemon install`, `stop` and
// `restart` against a real service manager: a systemd user manager
// (`systemd --user`) each script starts for itself (usersystemd) and
// stops at its end. It needs root (for a mount namespace and cgroups of
// its own) and systemd's binaries; FUNGI_REQUIRE_SYSTEMD=1 (CI) makes
// their absence a failure.
func TestDaemonUnderSystemd(t *testing.T) {
	if err := userSystemdUsable(); err != nil {
		if os.Getenv("FUNGI_REQUIRE_SYSTEMD") == "1" {
			t.Fatalf("FUNGI_REQUIRE_SYSTEMD=1 but a systemd user manager cannot run here: %v", err)
		}
		t.Skipf("a systemd user manager cannot run here: %v", err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/systemd",
		Setup: func(e *testscript.Env) error {
			e.Setenv("FUNGI_DIR", filepath.Join(e.WorkDir, "home"))
			e.Defer(func() { stopStrayDaemons(e.WorkDir) })
			return quietHomes(e.WorkDir)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitdaemon":  cmdWaitDaemon,
			"usersystemd": cmdUserSystemd,
			"insystemd":   cmdInSystemd,
			"unitname":    cmdUnitName,
			"daemonpid":   cmdDaemonPID,
		},
	})
}

// systemdBinary is the manager's program (Debian's package systemd).
const systemdBinary = "/lib/systemd/systemd"

// userSystemdUsable says why usersystemd cannot work here, or nil.
func userSystemdUsable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if _, err := os.Stat(systemdBinary); err != nil {
		return err
	}
	for _, p := range []string{"systemctl", "unshare", "nsenter"} {
		if _, err := exec.LookPath(p); err != nil {
			return err
		}
	}
	if len(cgroupHierarchies()) == 0 {
		return errors.New("no cgroup hierarchy under /sys/fs/cgroup")
	}
	return nil
}

// cgroupHierarchies are the mounted cgroup trees: /sys/fs/cgroup itself
// with cgroup v2, each of its folders on a v1 or hybrid machine.
func cgroupHierarchies() []string {
	var out []string
	for _, d := range append([]string{"/sys/fs/cgroup"}, globDirs("/sys/fs/cgroup/*")...) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

func globDirs(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

// userSystemdScript runs as `sh -c SCRIPT sh CGROUP`. The manager moves
// every process of the cgroup it starts in into an init.scope of its own,
// so it starts in a cgroup of its own (in every hierarchy), never in one
// other processes of the machine share. It runs in a mount namespace of
// its own, where /run/systemd/system exists: the manager refuses to start
// without it ("the system has not been booted with systemd"), and fungi
// asks systemctl only where it exists; the machine's /run is untouched.
const userSystemdScript = `set -e
for h in $HIERARCHIES; do
	mkdir -p "$h/$1"
	if [ -f "$h/cpuset.cpus" ]; then
		cat "$h/cpuset.cpus" > "$h/$1/cpuset.cpus"
		cat "$h/cpuset.mems" > "$h/$1/cpuset.mems"
	fi
	echo $$ > "$h/$1/cgroup.procs"
done
exec unshare --mount --propagation private sh -c '
	set -e
	mkdir -p /run/systemd
	mount -t tmpfs tmpfs /run/systemd
	mkdir /run/systemd/system
	exec ` + systemdBinary + ` --user'
`

// usersystemd starts a systemd user manager for the script: its runtime
// folder ($XDG_RUNTIME_DIR, where systemctl --user finds it) and its
// config folder ($XDG_CONFIG_HOME, where fungi writes the unit) are in
// $WORK, and $SYSTEMD_PID is its PID, for insystemd. It is stopped, with
// every unit it runs, when the script ends.
func cmdUserSystemd(ts *testscript.TestScript, neg bool, args []string) {
	run, cfg := ts.MkAbs("sd-run"), ts.MkAbs("sd-config")
	ts.Check(os.MkdirAll(run, 0o700))
	ts.Check(os.MkdirAll(cfg, 0o700))
	cgroup := fmt.Sprintf("fungi-test-%d-%08x", os.Getpid(), crc32.ChecksumIEEE([]byte(run)))
	hierarchies := cgroupHierarchies()
	logf, err := os.Create(ts.MkAbs("sd.log"))
	ts.Check(err)
	cmd := exec.Command("sh", "-c", userSystemdScript, "sh", cgroup)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+run, "XDG_CONFIG_HOME="+cfg, "HIERARCHIES="+strings.Join(hierarchies, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	ts.Check(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	ts.Defer(func() { stopUserSystemd(ts, cmd, exited, hierarchies, cgroup) })

	ts.Setenv("XDG_RUNTIME_DIR", run)
	ts.Setenv("XDG_CONFIG_HOME", cfg)
	ts.Setenv("SYSTEMD_PID", strconv.Itoa(cmd.Process.Pid))
	err = testutil.Poll(30*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("systemd --user exited (%v): %s", err, ts.ReadFile("sd.log"))
		default:
		}
		check := exec.Command("systemctl", "--user", "show-environment")
		check.Env = cmd.Env
		if out, err := check.CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl --user: %v: %s", err, out)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
}

// stopUserSystemd stops the manager as a logout would (SIGTERM: it stops
// its units, then exits) and removes its cgroups.
func stopUserSystemd(ts *testscript.TestScript, cmd *exec.Cmd, exited chan error, hierarchies []string, cgroup string) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	err := testutil.Poll(30*time.Second, func() error {
		var left []string
		for _, h := range hierarchies {
			if err := removeCgroup(filepath.Join(h, cgroup)); err != nil {
				left = append(left, err.Error())
			}
		}
		if len(left) > 0 {
			return errors.New(strings.Join(left, "; "))
		}
		return nil
	})
	if err != nil {
		ts.Logf("cgroups of the test's systemd left behind: %v", err)
	}
}

// removeCgroup removes a cgroup and the ones under it, deepest first (a
// cgroup is removed with rmdir, and only once it is empty).
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", dirs[i], err)
		}
	}
	return nil
}

// stopStrayDaemons sends SIGTERM to a daemon still holding a home of
// workDir when the script ends: one started beside systemd (what a broken
// restart does) is no unit the manager stops with the rest.
func stopStrayDaemons(workDir string) {
	for _, name := range scriptHomes {
		dir := filepath.Join(workDir, name)
		data, err := os.ReadFile(filepath.Join(dir, "daemon.lock"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			continue
		}
		// The PID may be another process's by now: only a daemon of
		// this home is stopped.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), dir+"\x00daemon") {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}

// insystemd PROGRAM ARGS... is exec in the test manager's mount
// namespace, where /run/systemd/system exists: fungi there sees a
// systemd and goes through it.
func cmdInSystemd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: insystemd PROGRAM ARGS...")
	}
	// nsenter would run PROGRAM in / of the namespace without --wd.
	err := ts.Exec("nsenter", append([]string{"-t", ts.Getenv("SYSTEMD_PID"), "-m", "--wd=" + ts.MkAbs("."), "--"}, args...)...)
	switch {
	case neg && err == nil:
		ts.Fatalf("unexpected success")
	case !neg && err != nil:
		ts.Fatalf("%v", err)
	}
}

// unitname DIR VAR sets VAR to the name `fungi daemon install` gives the
// unit of home DIR.
func cmdUnitName(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: unitname DIR VAR")
	}
	ts.Setenv(args[1], install.Spec{Home: ts.MkAbs(args[0])}.Name())
}

// daemonpid DIR VAR sets VAR to the PID of the daemon that holds home DIR
// (its daemon.lock).
func cmdDaemonPID(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: daemonpid DIR VAR")
	}
	pid := strings.TrimSpace(ts.ReadFile(filepath.Join(args[0], "daemon.lock")))
	if _, err := strconv.Atoi(pid); err != nil {
		ts.Fatalf("%s/daemon.lock holds no PID: %q", args[0], pid)
	}
	ts.Setenv(args[1], pid)
}
