package transport

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// SSH through fungi access against SSH straight to the same loopback sshd,
// in one run: what a user of a published sshd (`service expose ssh`) gets.
//
//	go test -run '^$' -bench SSH -benchtime 3x ./transport
func BenchmarkSSH(b *testing.B) {
	srv, ok := testutil.StartSSHD(b)
	if !ok {
		b.Skip("no sshd")
	}
	viaFungi := startAccess(b, targets{sink: srv.Addr, echo: srv.Addr}).echo
	file := filepath.Join(b.TempDir(), "payload")
	if err := os.WriteFile(file, make([]byte, 64<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct{ name, addr string }{{"direct-loopback", srv.Addr}, {"fungi-access", viaFungi}} {
		_, port, _ := net.SplitHostPort(p.addr)
		b.Run("scp-64MiB/"+p.name, func(b *testing.B) {
			b.SetBytes(64 << 20)
			dst := filepath.Join(b.TempDir(), "copied")
			for range b.N {
				args := append(srv.Args(), "-q", "-P", port, file, "root@127.0.0.1:"+dst)
				if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
					b.Fatalf("scp: %v\n%s", err, out)
				}
			}
		})
		b.Run("keystroke-rtt/"+p.name, func(b *testing.B) {
			// `cat` on the far side echoes every byte: a keystroke and its
			// echo, as in an interactive shell.
			args := append(srv.Args(), "-T", "-p", port, "root@127.0.0.1", "cat")
			cmd := exec.Command("ssh", args...)
			in, _ := cmd.StdinPipe()
			outPipe, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { in.Close(); cmd.Wait() }()
			out := bufio.NewReader(outPipe)
			key := []byte{'x'}
			echo := func() time.Duration {
				t0 := time.Now()
				if _, err := in.Write(key); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(out, key); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			echo() // the session is up
			lat := make([]time.Duration, 0, 500)
			b.ResetTimer()
			for range b.N {
				for range 500 / max(1, b.N) {
					lat = append(lat, echo())
				}
			}
			reportPercentiles(b, lat)
		})
	}
}
