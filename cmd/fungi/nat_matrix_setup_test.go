package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/sys/unix"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// natEnv is what every cell shares: the fungi and nsexec programs (this
// test binary, as testscript.Main put them on PATH) and the example app.
type natEnv struct {
	fungi, nsexec string
	manifest      string
}

func newNATEnv(t *testing.T) *natEnv {
	fungi, err := exec.LookPath("fungi")
	if err != nil {
		t.Fatal(err)
	}
	nsexecPath, err := exec.LookPath("nsexec")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := copyExamples(work, testutil.BuildWasm(t, "examples/apps/filebrowser-lite")); err != nil {
		t.Fatal(err)
	}
	return &natEnv{fungi: fungi, nsexec: nsexecPath,
		manifest: filepath.Join(work, "examples/service-manifests/filebrowser-lite-wasi.service.yaml")}
}

// natNFTAvailable reports whether the eim router can be built: its
// full-cone rule is nftables'. Under FUNGI_REQUIRE_NETNS=1 (CI) its
// absence is a failure.
func natNFTAvailable(t *testing.T) bool {
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("FUNGI_REQUIRE_NETNS") == "1" {
			t.Fatal("FUNGI_REQUIRE_NETNS=1 but nft (Debian package nftables) is missing: the eim router of the NAT matrix needs it")
		}
		t.Log("no nft: the cells with an eim router are left out")
		return false
	}
	return true
}

// natPrefix names a test network: namespace and interface names are global
// and an interface name has at most 15 bytes ("up-" PREFIX "rb").
func natPrefix(t *testing.T) string {
	return fmt.Sprintf("m%08x", crc32.ChecksumIEEE([]byte(t.TempDir())))
}

// natUp builds a test network with the given router kinds; it is removed
// when the test ends, after the daemons (cleanups run last first).
func natUp(t *testing.T, prefix, kindA, kindB string) {
	script := filepath.Join(testutil.RepoRoot(), "examples/nat-testnet.sh")
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "down", prefix).CombinedOutput(); err != nil {
			t.Errorf("nat-testnet.sh down %s: %v\n%s", prefix, err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "up", prefix)
	cmd.Env = append(os.Environ(), "NAT_A="+kindA, "NAT_B="+kindB)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("NAT_A=%s NAT_B=%s nat-testnet.sh up %s: %v\n%s", kindA, kindB, prefix, err, out)
	}
}

// natNode is a fungi process of a cell.
type natNode struct {
	dir string
	id  string
	log string
	cmd *exec.Cmd
}

func (e *natEnv) newNode(t *testing.T, dir string) *natNode {
	// mDNS and port mapping off: the matrix is about punching through the
	// routers, not about asking them for a port; the dashboard off too.
	if err := quietHome(dir); err != nil {
		t.Fatal(err)
	}
	e.cli(t, &natNode{dir: dir}, "init")
	h, err := home.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := h.Identity()
	if err != nil {
		t.Fatal(err)
	}
	return &natNode{dir: dir, id: id.String(), log: dir + ".log"}
}

// start runs `fungi -f DIR ARGS...` in network namespace ns until the test
// ends: SIGINT then, SIGKILL if it has not stopped within 10 s.
func (e *natEnv) start(t *testing.T, n *natNode, ns string, args ...string) {
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(e.nsexec, append([]string{ns, e.fungi, "-f", n.dir}, args...)...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if os.Getenv("FUNGI_NAT_MATRIX_LOGS") == "debug" {
		n.cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL=holepunch=debug")
	}
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { n.cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			n.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() || os.Getenv("FUNGI_NAT_MATRIX_LOGS") != "" {
			data, _ := os.ReadFile(n.log)
			if len(data) > 6000 {
				data = data[len(data)-6000:]
			}
			t.Logf("log of %s (end):\n%s", filepath.Base(n.dir), data)
		}
	})
}

// cli runs a fungi command against n's daemon and returns its stdout.
func (e *natEnv) cli(t *testing.T, n *natNode, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.fungi, append([]string{"-f", n.dir}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fungi %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func natClient(dir string) (*daemonClient, error) {
	h, err := home.Open(dir)
	if err != nil {
		return nil, err
	}
	return (&env{home: h, stdout: io.Discard, stderr: io.Discard}).connect()
}

// natPoll calls check with a client of n's daemon until it returns nil or
// within passes.
func natPoll(n *natNode, within time.Duration, check func(context.Context, *daemonClient) error) error {
	return testutil.Poll(within, func() error {
		c, err := natClient(n.dir)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return check(ctx, c)
	})
}

func natReserved(relayID string) func(context.Context, *daemonClient) error {
	return func(ctx context.Context, c *daemonClient) error {
		info, err := c.Info(ctx, &messages.InfoRequest{})
		if err != nil {
			return err
		}
		for _, r := range info.RelayReservations {
			if r.RelayPeerId == relayID && r.Expires != "" {
				return nil
			}
		}
		return errors.New("no reservation on the relay yet")
	}
}

// natKnowsPublicAddr is nil once the node lists a public address of its
// own that is not a relay's.
func natKnowsPublicAddr(ctx context.Context, c *daemonClient) error {
	info, err := c.Info(ctx, &messages.InfoRequest{})
	if err != nil {
		return err
	}
	for _, s := range info.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err == nil && !strings.Contains(s, "/p2p-circuit") && manet.IsPublicAddr(a) {
			return nil
		}
	}
	return fmt.Errorf("no public address of its own among %v", info.Addrs)
}

// natConn is n's connection to peer: the direct one if there is one.
func natConn(ctx context.Context, c *daemonClient, peer string) (*messages.ConnectionInfo, error) {
	res, err := c.Connections(ctx, &messages.ConnectionListRequest{})
	if err != nil {
		return nil, err
	}
	var found *messages.ConnectionInfo
	for _, cn := range res.Connections {
		if cn.PeerId == peer && (found == nil || found.Relayed) {
			found = cn
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no connection to %s", peer)
	}
	return found, nil
}

// natAccessPort is the local port of n's access entry for service.
func natAccessPort(t *testing.T, n *natNode, service string) int {
	c, err := natClient(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.ListAccess(ctx, &messages.AccessListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Entries {
		if e.ServiceId == service && len(e.Ports) > 0 {
			_, p, _ := net.SplitHostPort(e.Ports[0].LocalAddress)
			var port int
			fmt.Sscan(p, &port)
			return port
		}
	}
	t.Fatalf("no access entry for %s", service)
	return 0
}

// inNetns runs f on an OS thread that has entered network namespace ns. A
// socket belongs to the namespace it was made in, so f may hand sockets out
// to be used from any goroutine.
func inNetns(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, in another namespace, ends with the
		// goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		nsf, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// natHTTP makes one request from inside network namespace ns.
func natHTTP(ns, method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	var conn net.Conn
	if err := inNetns(ns, func() (err error) {
		conn, err = net.DialTimeout("tcp", req.URL.Host, 10*time.Second)
		return err
	}); err != nil {
		return 0, "", err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}}
	return testutil.HTTPDo(client, req)
}
