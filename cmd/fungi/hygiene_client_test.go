package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
)

// A socket this user may not open is somebody else's running daemon: the
// message says whose and what to do, never that no daemon runs.
func TestSocketPermissionDeniedIsNotReportedAsNotRunning(t *testing.T) {
	dir := t.TempDir()
	// The child below runs as another user: it must reach the folder and
	// the binary, just not open the socket.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	h := filepath.Join(dir, "home")
	os.Mkdir(h, 0o755)
	sock := filepath.Join(h, "fungi.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	testutil.Accept(ln, func(c net.Conn) { c.Close() })

	var stderr string
	if os.Getuid() != 0 {
		// An ordinary user is refused by a socket without permissions.
		if err := os.Chmod(sock, 0o000); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if code := run([]string{"-f", h, "service", "list"}, &out, &errOut); code == 0 {
			t.Fatalf("service list on a socket it may not open succeeded: %s", out.String())
		}
		stderr = errOut.String()
	} else {
		// root opens any socket, so the command runs as nobody against a
		// socket of root's with the daemon's mode.
		if err := os.Chmod(sock, 0o600); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "fungi")
		linkOrCopy(t, bin)
		cmd := &exec.Cmd{
			Path: bin,
			// The test binary runs the fungi command when called fungi
			// (testscript.Main in fungi_test.go).
			Args: []string{"fungi", "-f", h, "service", "list"},
			Env:  []string{"PATH=/usr/bin:/bin", "HOME=" + dir},
			Dir:  dir,
			SysProcAttr: &syscall.SysProcAttr{
				Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
			},
		}
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Run(); err == nil {
			t.Fatal("service list as another user on root's socket succeeded")
		}
		stderr = errOut.String()
	}
	if strings.Contains(stderr, "not running") {
		t.Fatalf("a refused socket was reported as no daemon:\n%s", stderr)
	}
	for _, want := range []string{"permission denied", sock, "mode 0", "owned by", "run the command as"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the message does not say %q:\n%s", want, stderr)
		}
	}
}

// linkOrCopy puts the test binary at dst, where another user can run it.
func linkOrCopy(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if os.Link(self, dst) == nil {
		os.Chmod(dst, 0o755)
		return
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// No socket, or a socket nobody listens on (a daemon that died): the
// shared message, and the way to start the daemon of this very folder.
func TestDaemonNotRunningRepeatsTheFolder(t *testing.T) {
	h := filepath.Join(t.TempDir(), "node b")
	os.Mkdir(h, 0o700)
	sock := filepath.Join(h, "fungi.sock")
	check := func(what string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run([]string{"-f", h, "service", "list"}, &out, &errOut); code == 0 {
			t.Fatalf("%s: service list succeeded", what)
		}
		for _, want := range []string{
			"fungi daemon is not running (socket " + sock + ")",
			"fungi -C '" + h + "' daemon",
		} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("%s: the message does not say %q:\n%s", what, want, errOut.String())
			}
		}
	}
	check("no socket")

	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the dead daemon's socket should still be there: %v", err)
	}
	check("a socket nobody listens on")
}
