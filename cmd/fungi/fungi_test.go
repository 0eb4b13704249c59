package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
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
