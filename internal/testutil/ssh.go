package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SSHD is a private sshd on loopback: the baseline fungi's access path is
// measured against is `ssh -L` through it.
type SSHD struct {
	// Addr is its host:port, Port the port alone.
	Addr string
	Port int
	// UserKey is the private key that logs in as root.
	UserKey string
	// PID is sshd's process ID, for measuring its CPU time.
	PID int
}

// StartSSHD runs /usr/sbin/sshd on a free loopback port, with a host key,
// user key and config of its own (aes128-gcm, TCP forwarding and sftp
// allowed), until the test ends. ok is false where sshd is not installed.
func StartSSHD(tb testing.TB) (s SSHD, ok bool) {
	tb.Helper()
	const sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		tb.Log("no sshd: apt-get install openssh-server openssh-client to measure the ssh baselines")
		return SSHD{}, false
	}
	dir := tb.TempDir()
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "user"))
	pub, _ := os.ReadFile(filepath.Join(dir, "user.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755) // sshd refuses to start without it
	port := FreePort(tb)
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s/host
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin yes
PasswordAuthentication no
StrictModes no
UsePAM no
Ciphers aes128-gcm@openssh.com
AllowTcpForwarding yes
Subsystem sftp internal-sftp
PidFile %s/sshd.pid
`, port, dir, dir, dir)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600)
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s = SSHD{Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, UserKey: filepath.Join(dir, "user"), PID: cmd.Process.Pid}
	WaitFor(tb, 10*time.Second, "sshd to listen", func() error {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return s, true
}

// Args are the client options every ssh and scp to s takes: its user key,
// no host key checks, aes128-gcm.
func (s SSHD) Args() []string {
	return []string{"-i", s.UserKey, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "Ciphers=aes128-gcm@openssh.com"}
}
