package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	mathrand "math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/docker"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fungi":  func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
		"nsexec": nsexec,
		"bulk":   bulk,
	})
}

// TestScripts drives real fungi binaries and daemons through the scripts in
// testdata/script.
func TestScripts(t *testing.T) {
	wasm := testutil.BuildWasm(t, "examples/apps/filebrowser-lite")
	dockerOK := testutil.DockerAvailable(t)
	netnsOK := netnsAvailable(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Condition: func(cond string) (bool, error) {
			if cond == "docker" {
				return dockerOK, nil
			}
			if cond == "netns" {
				return netnsOK, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(e *testscript.Env) error {
			e.Setenv("FUNGI_DIR", filepath.Join(e.WorkDir, "home"))
			if dockerOK {
				e.Defer(func() { removeContainers(e.WorkDir) })
			}
			e.Setenv("REPO", testutil.RepoRoot())
			// Namespace names are global: a prefix per script and run.
			ns := fmt.Sprintf("f%08x", crc32.ChecksumIEEE([]byte(e.WorkDir)))
			e.Setenv("NS", ns)
			if netnsOK {
				e.Defer(func() {
					exec.Command("bash", filepath.Join(testutil.RepoRoot(), "examples/nat-testnet.sh"), "down", ns).Run()
				})
			}
			if err := quietHomes(e.WorkDir); err != nil {
				return err
			}
			return copyExamples(e.WorkDir, wasm)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitdaemon": cmdWaitDaemon,
			"probe":      cmdProbe,
			"containers": cmdWaitContainers,
			"waitstate":  cmdWaitState,
			"svcport":    cmdServicePort,
			"http":       cmdHTTP,
			"holdport":   cmdHoldPort,
			"nodeinfo":   cmdNodeInfo,
			"freeport":   cmdFreePort,
			"accessport": cmdAccessPort,
			"holdconn":   cmdHoldConn,
			"connclosed": cmdConnClosed,
			"sighup":     cmdSighup,
			"waitfile":   cmdWaitFile,
			"dockerimage": func(ts *testscript.TestScript, neg bool, args []string) {
				testutil.BuildExampleImage(t)
			},
			"registry":     cmdRegistry,
			"subst":        cmdSubst,
			"waitrestarts": cmdWaitRestarts,
			"waitlog":      cmdWaitLog,
			"peerid": func(ts *testscript.TestScript, neg bool, args []string) {
				h, _ := home.Open(ts.MkAbs(args[0]))
				_, id, err := h.Identity()
				ts.Check(err)
				ts.Setenv(args[1], id.String())
			},
			"waitport":    cmdWaitPort,
			"namesport":   cmdNamesPort,
			"namehttp":    cmdNameHTTP,
			"webserver":   cmdWebServer,
			"webserverat": cmdWebServerAt,
			"setenvfile": func(ts *testscript.TestScript, neg bool, args []string) {
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
			"waitrelay":  cmdWaitRelay,
			"waitconn":   cmdWaitConn,
			"waitdevice": cmdWaitDevice,
			"roam":       cmdRoam,
			"waitdirect": func(ts *testscript.TestScript, neg bool, args []string) {
				err := pollDaemon(ts, ts.MkAbs(args[0]), 30*time.Second, func(c *daemonClient) error {
					res, err := c.Connections(context.Background(), &messages.ConnectionListRequest{})
					if err != nil {
						return err
					}
					for _, cn := range res.Connections {
						if cn.PeerId == args[1] && !cn.Relayed {
							return nil
						}
					}
					return fmt.Errorf("no direct connection to %s", args[1])
				})
				ts.Check(err)
			},
			"nshttp":    cmdNSHTTP,
			"wasmguest": cmdWasmGuest,
			"buildwasm": cmdBuildWasm,
			"tcpecho":   cmdTCPEcho,
			"randfile": func(ts *testscript.TestScript, neg bool, args []string) {
				n, _ := strconv.Atoi(args[1])
				b := make([]byte, n)
				rand.Read(b)
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
			},
			"containername": func(ts *testscript.TestScript, neg bool, args []string) {
				h, _ := home.Open(ts.MkAbs(args[0]))
				_, id, err := h.Identity()
				ts.Check(err)
				ts.Setenv(args[2], docker.ContainerName(id.String(), args[1]))
			},
		},
	})
}

// copyExamples lays out examples/ in the script's folder as in the
// repository, with the wasm that `make examples` would build.
func copyExamples(work, wasm string) error {
	root := testutil.RepoRoot()
	manifests, _ := filepath.Glob(filepath.Join(root, "examples/service-manifests/*.yaml"))
	dst := filepath.Join(work, "examples", "service-manifests")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(m)), data, 0o644); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	os.MkdirAll(filepath.Join(work, "examples", "wasm"), 0o755)
	return os.WriteFile(filepath.Join(work, "examples", "wasm", "filebrowser-lite.wasm"), bin, 0o644)
}

// homeArg takes an optional leading home folder (relative to $WORK) off
// args; without one the script's $FUNGI_DIR is meant.
// scriptHomes are the homes the scripts give their daemons (-f a, b, c;
// FUNGI_DIR is home).
var scriptHomes = []string{"a", "b", "c", "home", "r", "r2", "r3", "node"}

// quietHomes writes, before any `fungi init`, the config of every home a
// script may use: the defaults with mDNS, port mapping and the DHT off, so
// the daemons send no multicast, no gateway requests and no DHT queries off
// the machine. The nat_* scripts run their daemons in network namespaces
// of their own, and keep the defaults but the DHT's: its default bootstrap
// list is the public one (a script that wants the DHT passes --bootstrap
// with nodes of its own).
func quietHomes(workDir string) error {
	inNamespaces := strings.HasPrefix(filepath.Base(workDir), "script-nat_")
	for _, name := range scriptHomes {
		dir := filepath.Join(workDir, name)
		if inNamespaces {
			if err := writeHomeConfig(dir, config.DefaultConfig()); err != nil {
				return err
			}
			continue
		}
		if err := quietHome(dir); err != nil {
			return err
		}
	}
	return nil
}

// quietHome writes dir's config.yaml for a test daemon outside a network
// namespace of its own: the defaults with mDNS, port mapping and the DHT
// off.
func quietHome(dir string) error {
	cfg := config.DefaultConfig()
	cfg.MDNS, cfg.PortMapping = false, false
	// Many daemons share this machine: the dashboard, on a fixed port by
	// default, is off unless a test turns it on (on port 0).
	cfg.UI.Enabled = false
	return writeHomeConfig(dir, cfg)
}

// writeHomeConfig writes cfg as dir's config.yaml with the DHT off: a test
// node never bootstraps from the public libp2p nodes, and joins a DHT only
// through --bootstrap with nodes the test started.
func writeHomeConfig(dir string, cfg config.Config) error {
	cfg.Discovery.DHT = false
	cfg.Bootstrap = []string{}
	// Many daemons share this machine: each gets a names port of its own.
	cfg.Names.Listen = "127.0.0.1:0"
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.yaml"), append([]byte("# a test daemon: nothing leaves the machine\n"), data...), 0o600)
}

// The daemons of the scripts (outside network namespaces) run with mDNS
// and port mapping off, and `fungi init` keeps that config.
func TestScriptDaemonsKeepMDNSAndPortMappingOff(t *testing.T) {
	work := filepath.Join(t.TempDir(), "script-remote_flow")
	if err := quietHomes(work); err != nil {
		t.Fatal(err)
	}
	for _, name := range scriptHomes {
		dir := filepath.Join(work, name)
		var stdout, stderr strings.Builder
		if code := run([]string{"-f", dir, "init"}, &stdout, &stderr); code != 0 {
			t.Fatalf("fungi init %s: %s", name, stderr.String())
		}
		h, _ := home.Open(dir)
		cfg, err := h.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MDNS || cfg.PortMapping || cfg.Discovery.DHT || len(cfg.Bootstrap) > 0 {
			t.Fatalf("home %s: mdns %v, portMapping %v, discovery.dht %v, bootstrap %q; a test daemon must have all off", name, cfg.MDNS, cfg.PortMapping, cfg.Discovery.DHT, cfg.Bootstrap)
		}
	}
}

func homeArg(ts *testscript.TestScript, args []string, want int) (string, []string) {
	if len(args) == want+1 {
		return ts.MkAbs(args[0]), args[1:]
	}
	return ts.Getenv("FUNGI_DIR"), args
}

func scriptClient(ts *testscript.TestScript, dir ...string) (*daemonClient, error) {
	d := ts.Getenv("FUNGI_DIR")
	if len(dir) > 0 {
		d = dir[0]
	}
	h, err := home.Open(d)
	if err != nil {
		return nil, err
	}
	e := &env{home: h, stdout: io.Discard, stderr: io.Discard}
	return e.connect()
}

// waitdaemon [DIR] waits until the daemon of DIR (or $FUNGI_DIR) answers.
func cmdWaitDaemon(ts *testscript.TestScript, neg bool, args []string) {
	dir, _ := homeArg(ts, args, 0)
	err := pollDaemon(ts, dir, 60*time.Second, func(c *daemonClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.Info(ctx, &messages.InfoRequest{})
		return err
	})
	if err != nil {
		ts.Fatalf("daemon did not come up: %v", err)
	}
}

// waitstate [DIR] NAME STATE waits until the service reports STATE.
func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	dir, args := homeArg(ts, args, 2)
	if len(args) != 2 {
		ts.Fatalf("usage: waitstate [DIR] NAME STATE")
	}
	err := pollDaemon(ts, dir, 60*time.Second, func(c *daemonClient) error {
		info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
		if err != nil {
			return err
		}
		if info.State != args[1] {
			return fmt.Errorf("state %s (last error %q)", info.State, info.LastError)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%s never became %s: %v", args[0], args[1], err)
	}
}

// svcport NAME VAR sets $VAR to the host port of the service's first port.
func cmdServicePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: svcport NAME VAR")
	}
	c, err := scriptClient(ts)
	ts.Check(err)
	defer c.Close()
	info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
	ts.Check(err)
	if len(info.Ports) == 0 {
		ts.Fatalf("%s has no ports", args[0])
	}
	ts.Setenv(args[1], strconv.Itoa(int(info.Ports[0].HostPort)))
}

// http METHOD URL [FILE] prints "HTTP <status>" and the body; it fails on a
// connection error (so `! http` asserts nothing listens).
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: http METHOD URL [BODYFILE]")
	}
	var body io.Reader
	if len(args) == 3 {
		body = strings.NewReader(ts.ReadFile(args[2]))
	}
	req, err := http.NewRequest(args[0], args[1], body)
	ts.Check(err)
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("%s %s: %v", args[0], args[1], err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if neg {
		ts.Fatalf("%s %s answered %s, want no answer", args[0], args[1], resp.Status)
	}
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, data)
}

// holdport PORT listens on 127.0.0.1:PORT until the script ends, as another
// program on the machine would.
func cmdHoldPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: holdport PORT")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+args[0])
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
}

// nodeinfo DIR IDVAR ADDRVAR sets the node's peer ID and first address.
func cmdNodeInfo(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: nodeinfo DIR IDVAR ADDRVAR")
	}
	c, err := scriptClient(ts, ts.MkAbs(args[0]))
	ts.Check(err)
	defer c.Close()
	info, err := c.Info(context.Background(), &messages.InfoRequest{})
	ts.Check(err)
	if len(info.Addrs) == 0 {
		ts.Fatalf("%s listens nowhere", args[0])
	}
	ts.Setenv(args[1], info.PeerId)
	ts.Setenv(args[2], info.Addrs[0])
}

// freeport VAR sets VAR to a loopback port that is free now.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	ln.Close()
}

// webserver VAR serves HTTP on a loopback port, as a program fungi did not
// start would, until the script ends; VAR is set to the port.
func cmdWebServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: webserver VAR")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from a program fungi did not start: %s %s\n", r.Method, r.URL.Path)
	}))
	ts.Defer(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ts.Setenv(args[0], port)
}

// accessport DIR SERVICE_ID VAR sets VAR to the local port of an access entry.
func cmdAccessPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: accessport DIR SERVICE_ID VAR")
	}
	c, err := scriptClient(ts, ts.MkAbs(args[0]))
	ts.Check(err)
	defer c.Close()
	res, err := c.ListAccess(context.Background(), &messages.AccessListRequest{})
	ts.Check(err)
	for _, e := range res.Entries {
		if e.ServiceId == args[1] {
			_, port, _ := net.SplitHostPort(e.Ports[0].LocalAddress)
			ts.Setenv(args[2], port)
			return
		}
	}
	ts.Fatalf("no access entry for %s", args[1])
}

var (
	heldMu    sync.Mutex
	heldConns = map[string]net.Conn{}
)

// holdconn NAME ADDR opens a kept-alive HTTP connection to ADDR, checks it
// answers one request, and keeps it open under NAME.
func cmdHoldConn(ts *testscript.TestScript, neg bool, args []string) {
	conn, err := net.DialTimeout("tcp", args[1], 10*time.Second)
	ts.Check(err)
	ts.Defer(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: fungi\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	ts.Check(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		ts.Fatalf("held connection got %s", resp.Status)
	}
	heldMu.Lock()
	heldConns[ts.Getenv("WORK")+args[0]] = conn
	heldMu.Unlock()
}

// connclosed NAME waits until the held connection is closed from the far
// side.
func cmdConnClosed(ts *testscript.TestScript, neg bool, args []string) {
	heldMu.Lock()
	conn := heldConns[ts.Getenv("WORK")+args[0]]
	heldMu.Unlock()
	if conn == nil {
		ts.Fatalf("no held connection %s", args[0])
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	if err == nil {
		ts.Fatalf("the connection is still open")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		ts.Fatalf("the connection stayed open for 30s")
	}
}

// registry VAR starts an OCI registry on 127.0.0.1 for the script and sets
// VAR to its host:port.
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	ts.Defer(srv.Close)
	ts.Setenv(args[0], strings.TrimPrefix(srv.URL, "http://"))
}

// subst IN OUT KEY=VALUE... copies IN to OUT replacing each @KEY@.
func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	data := ts.ReadFile(args[0])
	for _, kv := range args[2:] {
		k, v, _ := strings.Cut(kv, "=")
		data = strings.ReplaceAll(data, "@"+k+"@", v)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(data), 0o644))
}

// waitrestarts [DIR] NAME N waits until the service is running again after
// N restarts.
func cmdWaitRestarts(ts *testscript.TestScript, neg bool, args []string) {
	dir, args := homeArg(ts, args, 2)
	want, _ := strconv.Atoi(args[1])
	err := pollDaemon(ts, dir, 60*time.Second, func(c *daemonClient) error {
		info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
		if err != nil {
			return err
		}
		if int(info.Restarts) != want || info.State != "running" {
			return fmt.Errorf("state %s, restarts %d", info.State, info.Restarts)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
}

// waitlog [DIR] NAME REGEXP waits until the service's log matches: a
// container's output reaches the log through the engine, a moment later.
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	dir, args := homeArg(ts, args, 2)
	re := regexp.MustCompile(args[1])
	err := pollDaemon(ts, dir, 30*time.Second, func(c *daemonClient) error {
		stream, err := c.Logs(context.Background(), &messages.LogsRequest{Name: args[0], Tail: -1})
		if err != nil {
			return err
		}
		var all []byte
		for {
			chunk, err := stream.Recv()
			if err != nil {
				break
			}
			all = append(all, chunk.Data...)
		}
		if !re.Match(all) {
			return fmt.Errorf("no match for %q in:\n%s", args[1], all)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
}

// removeContainers removes what the script's nodes left in the engine, so a
// failed run does not leave containers behind.
func removeContainers(work string) {
	keys, _ := filepath.Glob(filepath.Join(work, "*", "identity.key"))
	for _, k := range keys {
		h, _ := home.Open(filepath.Dir(k))
		_, id, err := h.Identity()
		if err != nil {
			continue
		}
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+docker.LabelNode+"="+id.String()).Output()
		for _, c := range strings.Fields(string(out)) {
			exec.Command("docker", "rm", "-f", c).Run()
		}
	}
}

// netnsAvailable reports whether the test can build network namespaces (it
// runs as root and has ip and iptables). FUNGI_REQUIRE_NETNS=1 (CI) makes
// their absence a failure.
func netnsAvailable(t *testing.T) bool {
	ok := os.Geteuid() == 0
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			ok = false
		}
	}
	if !ok && os.Getenv("FUNGI_REQUIRE_NETNS") == "1" {
		t.Fatal("FUNGI_REQUIRE_NETNS=1 but this run cannot build network namespaces (needs root, ip, iptables)")
	}
	return ok
}

// waitport ADDR waits until something accepts TCP connections on ADDR.
func cmdWaitPort(ts *testscript.TestScript, neg bool, args []string) {
	err := testutil.Poll(30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	ts.Check(err)
}

// waitrelay DIR RELAY_ID reserved|refused waits for the node's reservation
// on the relay to be held, or to be refused.
func cmdWaitRelay(ts *testscript.TestScript, neg bool, args []string) {
	err := pollDaemon(ts, ts.MkAbs(args[0]), 60*time.Second, func(c *daemonClient) error {
		info, err := c.Info(context.Background(), &messages.InfoRequest{})
		if err != nil {
			return err
		}
		for _, r := range info.RelayReservations {
			if r.RelayPeerId != args[1] {
				continue
			}
			if args[2] == "reserved" && r.Expires != "" {
				return nil
			}
			if args[2] == "refused" && r.Error != "" {
				return nil
			}
			return fmt.Errorf("relay state: expires %q error %q", r.Expires, r.Error)
		}
		return fmt.Errorf("no reservation attempt on %s yet", args[1])
	})
	if err != nil {
		ts.Fatalf("relay %s never %s: %v", args[1], args[2], err)
	}
}

// nshttp NETNS METHOD URL [FILE] is http run inside a network namespace,
// where a node's access port listens.
func cmdNSHTTP(ts *testscript.TestScript, neg bool, args []string) {
	done := make(chan struct{})
	var out string
	var err error
	go func() {
		defer close(done)
		runtime.LockOSThread() // setns applies to this thread; it dies with it
		var f *os.File
		if f, err = os.Open("/var/run/netns/" + args[0]); err != nil {
			return
		}
		defer f.Close()
		if err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return
		}
		var body io.Reader
		if len(args) == 4 {
			body = strings.NewReader(ts.ReadFile(args[3]))
		}
		req, _ := http.NewRequest(args[1], args[2], body)
		// Dial here, on the thread in the namespace: the transport would
		// dial from a goroutine of its own, on some other thread.
		var conn net.Conn
		if conn, err = net.DialTimeout("tcp", req.URL.Host, 10*time.Second); err != nil {
			return
		}
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}}
		var resp *http.Response
		if resp, err = client.Do(req); err != nil {
			return
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = fmt.Sprintf("HTTP %d\n%s", resp.StatusCode, data)
	}()
	<-done
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), out)
}

// nsexec NETNS PROGRAM ARGS... runs PROGRAM in a network namespace by
// entering it and exec-ing, so PROGRAM is this very process and gets the
// script's signals itself (`ip netns exec` forks, and a SIGINT would stop
// only ip).
func nsexec() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: nsexec NETNS PROGRAM ARGS...")
		os.Exit(2)
	}
	runtime.LockOSThread()
	f, err := os.Open("/var/run/netns/" + os.Args[1])
	if err == nil {
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsexec:", err)
		os.Exit(1)
	}
	path, err := exec.LookPath(os.Args[2])
	if err == nil {
		err = syscall.Exec(path, os.Args[2:], os.Environ())
	}
	fmt.Fprintln(os.Stderr, "nsexec:", err)
	os.Exit(1)
}

// bulk put URL BYTES [MS_PER_MB] | bulk get URL moves BYTES of seeded
// pseudo-random data through an HTTP URL (PUT, optionally paced) or reads
// it back, and prints its SHA-256 and the rate, so a script can compare
// what went in with what came out.
func bulk() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bulk put URL BYTES [MS_PER_MB] | bulk get URL")
		os.Exit(2)
	}
	h := sha256.New()
	start := time.Now()
	var n int64
	switch os.Args[1] {
	case "put":
		size, _ := strconv.ParseInt(os.Args[3], 10, 64)
		pace := 0
		if len(os.Args) > 4 {
			pace, _ = strconv.Atoi(os.Args[4])
		}
		body := io.TeeReader(&pacedReader{r: io.LimitReader(mathrand.New(mathrand.NewSource(1)), size), msPerMB: pace}, h)
		req, _ := http.NewRequest(http.MethodPut, os.Args[2], body)
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bulk:", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			fmt.Fprintln(os.Stderr, "bulk: PUT answered", resp.Status)
			os.Exit(1)
		}
		n = size
	case "get":
		resp, err := http.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bulk:", err)
			os.Exit(1)
		}
		n, _ = io.Copy(h, resp.Body)
		resp.Body.Close()
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("sha256 %x\n", h.Sum(nil))
	fmt.Fprintf(os.Stderr, "%d bytes in %.3f s: %.1f MB/s\n", n, secs, float64(n)/secs/1e6)
	os.Exit(0)
}

// pacedReader spreads a body over time, msPerMB milliseconds per MiB: a
// token bucket that hands out one 64 KiB chunk per tick.
type pacedReader struct {
	r       io.Reader
	msPerMB int
	tick    *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	if p.msPerMB > 0 {
		if p.tick == nil {
			p.tick = time.NewTicker(time.Duration(p.msPerMB) * time.Millisecond / 16) // 16 chunks a MiB
		}
		<-p.tick.C
	}
	return p.r.Read(b)
}

// pollDaemon calls check with a client of the daemon in dir until it
// returns nil or within passes.
func pollDaemon(ts *testscript.TestScript, dir string, within time.Duration, check func(*daemonClient) error) error {
	return testutil.Poll(within, func() error {
		c, err := scriptClient(ts, dir)
		if err != nil {
			return err
		}
		defer c.Close()
		return check(c)
	})
}
