package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
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

// The NAT matrix (issue 10, must show 2): for every pair of router kinds of
// examples/nat-testnet.sh, two homes and a relay on the internet segment;
// A joins B with the code B's `device invite` printed (through the relay,
// or straight to B where B can be reached), administers B's services, reaches
// the example app through an access entry, and the test records whether
// and how fast the connection turns direct. TestNATKinds first checks that
// each kind of router is what its name says.
//
// By default each of the 10 unordered pairs runs once, in the order that
// exercises the punch (see TestNATMatrix); FUNGI_NAT_MATRIX=full runs all
// 16 ordered pairs (`make drill`); FUNGI_NAT_MATRIX_OUT=FILE writes the
// table as Markdown; FUNGI_NAT_MATRIX_LOGS=1 shows the daemons' logs of
// cells that passed too.

// natKinds are the router kinds of examples/nat-testnet.sh.
var natKinds = []string{"eim", "apdf", "sym", "none"}

// natExpect says what the kinds allow, A being the node that dials B
// through the relay and B the one that starts the hole punch (DCUtR):
//
//   - "direct" where either home is public (none): the NATed side dials
//     the public one, straight away (DCUtR's direct dial) or as its half of
//     the punch; between endpoint-independent mappings (eim, apdf), where
//     the address the relay observed is the one a punch packet comes from;
//     and sym with eim: the symmetric side's packets come from a port
//     nobody announced, but a full-cone router lets them in from anywhere.
//     With B symmetric, B's direct dial reaches A; with A symmetric, A's
//     half of the punch (A dials, B only sends punch packets) reaches B.
//   - "relayed" for sym with sym or apdf: the symmetric side's punch leaves
//     from a port its peer never heard of and the peer's filter drops it,
//     and the peer's punch goes to the port the symmetric NAT gave the
//     relay, which accepts only the relay. No port prediction is tried.
func natExpect(a, b string) string {
	switch {
	case a == "none" || b == "none":
		return "direct"
	case a == "sym" && b == "sym", a == "sym" && b == "apdf", a == "apdf" && b == "sym":
		return "relayed"
	}
	return "direct"
}

// natCellResult is one cell of the matrix.
type natCellResult struct {
	a, b      string
	early     bool // paired before the nodes knew their public addresses
	accessOK  bool
	direct    bool
	toDirect  time.Duration // from `device join` to the first direct connection
	transport string
	punchErr  string // B's punch error after a failed round, where relayed
	setup     time.Duration
	total     time.Duration
}

// natPunchDeadline bounds the wait for a direct connection where the kinds
// allow one: libp2p punches as the relayed connection opens, the punch
// keeper again 5–10 s later (once libp2p's is over) and then 30 s after a
// failure, so 45 s covers two failed attempts before the one that must
// work.
const natPunchDeadline = 45 * time.Second

// natDialFloor is what B's plain direct dial to A cost before it was cut
// to 2 s (punchDialTimeout in transport/punch.go): with A behind a router
// that drops it, every such cell turned direct in 5.1 s or more. Such a
// cell slower than this means the dial again waits too long.
const natDialFloor = 5 * time.Second

// natEarlyBound bounds the time to direct of a cell paired before either
// node knew its public address: the punch comes as soon as both do (the
// keeper's first look used to come ~15 s after).
const natEarlyBound = 10 * time.Second

// natKeeperRoundBound bounds when, where the kinds allow no direct path,
// the punch keeper's first round of its own has failed: it starts 5–10 s
// after libp2p's (~8 s) is over and lasts as long. When a try that found
// libp2p's still running counted as a success, the keeper's round came
// only 30 s after that try and failed ~55 s after the pairing.
const natKeeperRoundBound = 40 * time.Second

// natRelayedDeadline bounds the wait for a whole failed round where the
// kinds allow no direct path: libp2p's round as the connection opens lasts
// up to a 2 s direct dial and three 2 s punches; should its attempts be
// missed, the keeper's round (recorded as a whole) ends ~25 s after.
const natRelayedDeadline = 90 * time.Second

func TestNATMatrix(t *testing.T) {
	if !netnsAvailable(t) {
		t.Skip("needs root, ip and iptables to build network namespaces")
	}
	env := newNATEnv(t)
	nft := natNFTAvailable(t)
	// Of the two orders of a pair, the 10-cell run takes the one with the
	// more closed router on A's side: B's first move, a plain dial to A,
	// then fails and the cell goes through the punch proper, where the
	// other order would turn direct by that dial alone.
	closed := map[string]int{"none": 0, "eim": 1, "apdf": 2, "sym": 3}
	type cell struct {
		a, b  string
		early bool
	}
	var cells []cell
	for _, a := range natKinds {
		for _, b := range natKinds {
			if !nft && (a == "eim" || b == "eim") {
				continue
			}
			if closed[a] >= closed[b] || os.Getenv("FUNGI_NAT_MATRIX") == "full" {
				cells = append(cells, cell{a: a, b: b})
			}
		}
	}
	// And one pair made as soon as B holds its reservation, before either
	// node knows its public address, so libp2p's punch as the connection
	// opens comes too early on one side or the other.
	cells = append(cells, cell{a: "apdf", b: "apdf", early: true})
	var mu sync.Mutex
	var results []natCellResult
	start := time.Now()
	t.Run("cells", func(t *testing.T) {
		for _, c := range cells {
			name := c.a + "-" + c.b
			if c.early {
				name += "-early"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := env.runCell(t, c.a, c.b, c.early)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			})
		}
	})
	slices.SortFunc(results, func(x, y natCellResult) int {
		return strings.Compare(fmt.Sprint(x.early, slices.Index(natKinds, x.a), slices.Index(natKinds, x.b)),
			fmt.Sprint(y.early, slices.Index(natKinds, y.a), slices.Index(natKinds, y.b)))
	})
	table := natMarkdown(results)
	t.Logf("NAT matrix, %d cells in %s:\n%s", len(results), time.Since(start).Round(time.Second), table)
	if out := os.Getenv("FUNGI_NAT_MATRIX_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// natMarkdown is the matrix as Markdown: a grid of kinds, A's down and
// B's across, then one row per cell.
func natMarkdown(rs []natCellResult) string {
	var b strings.Builder
	byPair := map[[2]string]natCellResult{}
	for _, r := range rs {
		if !r.early {
			byPair[[2]string{r.a, r.b}] = r
		}
	}
	b.WriteString("| A ↓ B → | " + strings.Join(natKinds, " | ") + " |\n| --- |")
	b.WriteString(strings.Repeat(" --- |", len(natKinds)) + "\n")
	for _, a := range natKinds {
		b.WriteString("| **" + a + "** |")
		for _, kb := range natKinds {
			r, ok := byPair[[2]string{a, kb}]
			switch {
			case !ok:
				b.WriteString(" · |")
			case !r.accessOK:
				b.WriteString(" access FAILED |")
			case r.direct:
				fmt.Fprintf(&b, " direct, %.1f s |", r.toDirect.Seconds())
			default:
				b.WriteString(" relayed |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| A (dials) | B (punches) | expected | access | path | time to direct | transport | cell time |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		path, ttd := "relayed", "—"
		if r.direct {
			path, ttd = "direct", fmt.Sprintf("%.1f s", r.toDirect.Seconds())
		}
		access := "ok"
		if !r.accessOK {
			access = "FAILED"
		}
		a := r.a
		if r.early {
			a += " (paired early)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.0f s |\n",
			a, r.b, natExpect(r.a, r.b), access, path, ttd, r.transport, r.total.Seconds())
	}
	return b.String()
}

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

// runCell builds one cell: relay, two homes of the given kinds, pairing,
// remote administration and access, then the wait for a direct path.
func (e *natEnv) runCell(t *testing.T, kindA, kindB string, early bool) natCellResult {
	began := time.Now()
	res := natCellResult{a: kindA, b: kindB, early: early}
	prefix := natPrefix(t)
	natUp(t, prefix, kindA, kindB)
	base := t.TempDir()
	r, a, b := e.newNode(t, filepath.Join(base, "r")), e.newNode(t, filepath.Join(base, "a")), e.newNode(t, filepath.Join(base, "b"))
	relayAddr := "/ip4/11.99.0.1/udp/4001/quic-v1/p2p/" + r.id
	e.start(t, r, prefix+"pub", "relay", "--listen", "/ip4/11.99.0.1/tcp/4001",
		"--listen", "/ip4/11.99.0.1/udp/4001/quic-v1", "--allow", a.id, "--allow", b.id)
	for _, n := range []struct {
		node *natNode
		ns   string
	}{{a, prefix + "ha"}, {b, prefix + "hb"}} {
		e.start(t, n.node, n.ns, "daemon", "--listen", "/ip4/0.0.0.0/tcp/4433",
			"--listen", "/ip4/0.0.0.0/udp/4433/quic-v1", "--relay", relayAddr)
	}
	// Both reservations: B's so A can reach it, A's so A has talked to the
	// relay. And both nodes know a public address of their own, the one the
	// relay observed (what they punch with): libp2p starts punching only
	// after that, and a relayed connection that opens before misses the
	// punch libp2p makes as it opens, leaving it to the punch keeper's
	// retry seconds later. Nodes that have run a while, as a user's have,
	// are past that point.
	// Paired early, only B's reservation is waited for (A could not reach
	// B without it), so A dials within 200 ms of it being there.
	for _, n := range []*natNode{a, b} {
		if early {
			if n == a {
				continue
			}
			if err := natPoll(n, 60*time.Second, natReserved(r.id)); err != nil {
				t.Fatalf("%s: no reservation on the relay: %v", filepath.Base(n.dir), err)
			}
			continue
		}
		if err := natPoll(n, 60*time.Second, natReserved(r.id)); err != nil {
			t.Fatalf("%s: no reservation on the relay: %v", filepath.Base(n.dir), err)
		}
		if err := natPoll(n, 30*time.Second, natKnowsPublicAddr); err != nil {
			t.Fatalf("%s: %v", filepath.Base(n.dir), err)
		}
	}
	res.setup = time.Since(began)

	// Pairing by invite code, as a user pairs: B invites A as admin, and A
	// joins with the code, which carries B's relayed address and its
	// direct ones. Where B can be reached directly (a public home, a
	// full-cone router), A reaches it over QUIC or TCP as a stranger that
	// only the invite lets in.
	code := strings.TrimSpace(e.cli(t, b, "device", "invite", "--role", "admin", "--alias", "node-a"))
	t0 := time.Now()
	e.cli(t, a, "device", "join", code, "--alias", "node-b")

	// The path is watched from the start, while A works through it.
	type seen struct {
		at        time.Duration
		transport string
	}
	directCh := make(chan seen, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		var c *daemonClient
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		for ctx.Err() == nil {
			if c == nil {
				c, _ = natClient(a.dir)
			}
			if c != nil {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				cn, err := natConn(cctx, c, b.id)
				cancel()
				if err == nil && !cn.Relayed {
					directCh <- seen{time.Since(t0), cn.Transport}
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	out := e.cli(t, a, "peer", "admin", "service", "pull", "--peer", "node-b", e.manifest)
	if !strings.Contains(out, "pulled filebrowser-lite-wasi") {
		t.Fatalf("pull said %q", out)
	}
	e.cli(t, a, "peer", "admin", "service", "start", "--peer", "node-b", "filebrowser-lite-wasi")
	e.cli(t, a, "access", "attach", "filebrowser-lite-wasi", "--peer", "node-b")
	port := natAccessPort(t, a, "filebrowser-lite-wasi")
	body := fmt.Sprintf("through %s and %s", kindA, kindB)
	url := fmt.Sprintf("http://127.0.0.1:%d/files/matrix.txt", port)
	status, _, err := natHTTP(prefix+"ha", http.MethodPut, url, body)
	if err != nil || status/100 != 2 {
		t.Fatalf("PUT through A's access port: %d %v", status, err)
	}
	status, got, err := natHTTP(prefix+"ha", http.MethodGet, url, "")
	if err != nil || status != http.StatusOK || got != body {
		t.Fatalf("GET through A's access port: %d %q %v", status, got, err)
	}
	res.accessOK = true

	switch want := natExpect(kindA, kindB); want {
	case "direct":
		select {
		case s := <-directCh:
			res.direct, res.toDirect, res.transport = true, s.at, s.transport
		case <-time.After(natPunchDeadline - time.Since(t0)):
			t.Errorf("A behind %s, B behind %s: still relayed %s after device join; the kinds allow a direct path",
				kindA, kindB, natPunchDeadline)
		}
		switch {
		case !res.direct:
		case early && res.toDirect > natEarlyBound:
			t.Errorf("paired before the nodes knew their addresses, direct only after %s (want within %s)",
				res.toDirect.Round(time.Millisecond), natEarlyBound)
		case !early && res.toDirect > natDialFloor:
			t.Errorf("A behind %s, B behind %s: direct only after %s; B's plain dial to A should give up well within %s",
				kindA, kindB, res.toDirect.Round(time.Millisecond), natDialFloor)
		}
	case "relayed":
		// Relayed after B (the side that punches) has been through a whole
		// round and failed: the direct dial, then DCUtR's three
		// synchronised punches. A direct path here would mean the routers
		// are not what their kinds say. B records the keeper's own round's
		// failure as a whole ("all retries ... failed"); it starts 5–10 s
		// after libp2p's is over.
		var keeperFailed time.Duration
		err := natPoll(b, natRelayedDeadline, func(ctx context.Context, c *daemonClient) error {
			cn, err := natConn(ctx, c, a.id)
			if err != nil {
				return err
			}
			if !cn.Relayed {
				return nil // no use waiting: the check below fails the cell
			}
			res.punchErr = cn.PunchError
			if strings.HasPrefix(cn.PunchError, "all retries for hole punch") {
				keeperFailed = time.Since(t0)
				return nil
			}
			return fmt.Errorf("the punch keeper's round has not failed yet, punch error %q", cn.PunchError)
		})
		select {
		case s := <-directCh:
			res.direct, res.toDirect, res.transport = true, s.at, s.transport
		default:
			c, cerr := natClient(a.dir)
			if cerr != nil {
				t.Fatal(cerr)
			}
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cn, cerr := natConn(cctx, c, b.id)
			cancel()
			c.Close()
			if cerr == nil && !cn.Relayed {
				res.direct, res.toDirect, res.transport = true, time.Since(t0), cn.Transport
			}
		}
		switch {
		case res.direct:
			t.Errorf("A behind %s, B behind %s: direct (%s) after %s; these kinds should not be punchable",
				kindA, kindB, res.transport, res.toDirect)
		case err != nil:
			t.Errorf("B never recorded a failed round of hole punching: %v", err)
		case keeperFailed > natKeeperRoundBound:
			t.Errorf("the punch keeper's first round failed only %s after device join (want within %s)",
				keeperFailed.Round(time.Millisecond), natKeeperRoundBound)
		}
	}
	// Nobody but A, B and the relay is on this internet: the relay's
	// AutoNAT dial-backs, from a throwaway identity, are no devices
	// wanting in, and A, paired, is no stranger to B.
	for _, n := range []*natNode{a, b} {
		if out := strings.TrimSpace(e.cli(t, n, "device", "pending", "--json")); out != "[]" {
			t.Errorf("%s lists pending devices where no stranger knocked: %s", filepath.Base(n.dir), out)
		}
	}
	res.total = time.Since(began)
	t.Logf("A %s, B %s: access ok, direct %v after %s (%s), punch error %q; setup %s, cell %s",
		kindA, kindB, res.direct, res.toDirect.Round(time.Millisecond), res.transport, res.punchErr,
		res.setup.Round(time.Millisecond), res.total.Round(time.Millisecond))
	return res
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
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(data), err
}

// TestNATKinds checks each router kind of nat-testnet.sh with UDP probes
// from the node behind it to two hosts on the internet segment: whether
// the router keeps one external address:port whatever the destination
// (endpoint-independent mapping), and who may send to it: the host it
// sent to (always), another port of that host, another host, and any
// host to a port the node never sent from.
func TestNATKinds(t *testing.T) {
	if !netnsAvailable(t) {
		t.Skip("needs root, ip and iptables to build network namespaces")
	}
	want := map[string]natKindBehaviour{
		"none": {eim: true, kept: true, otherPort: true, otherHost: true, unsent: true},
		"eim":  {eim: true, kept: true, otherPort: true, otherHost: true},
		"apdf": {eim: true, kept: true},
		"sym":  {},
	}
	nft := natNFTAvailable(t)
	for _, pair := range [][2]string{{"eim", "apdf"}, {"sym", "none"}} {
		t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
			if pair[0] == "eim" && !nft {
				t.Skip("the eim router needs nft (Debian package nftables)")
			}
			prefix := natPrefix(t)
			natUp(t, prefix, pair[0], pair[1])
			// A second host on the internet segment.
			if out, err := exec.Command("ip", "-n", prefix+"pub", "addr", "add", "11.99.0.9/24", "dev", "br0").CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for i, kind := range pair {
				home := []string{"a", "b"}[i]
				got, err := natProbe(prefix, home, kind, i+1)
				if err != nil {
					t.Fatalf("home %s (%s): %v", home, kind, err)
				}
				t.Logf("%s: %+v", kind, got)
				if kind == "sym" {
					got.kept = false // a random port may be the node's own
				}
				if got != want[kind] {
					t.Errorf("router %s behaves as %+v, want %+v", kind, got, want[kind])
				}
			}
		})
	}
}

// natKindBehaviour is what the probes saw of a router.
type natKindBehaviour struct {
	eim       bool // one external address:port for two destinations
	kept      bool // the external port is the node's own
	otherPort bool // the host the node sent to reaches it from another port
	otherHost bool // a host the node never sent to reaches it
	unsent    bool // a port the node never sent from is reachable
}

// natProbe probes the router of home (a or b, the nth) from inside.
func natProbe(prefix, home, kind string, n int) (natKindBehaviour, error) {
	var got natKindBehaviour
	udp := func(ns, addr string) (c *net.UDPConn, err error) {
		err = inNetns(ns, func() error {
			c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netipMust(addr)))
			return err
		})
		return c, err
	}
	inside, err := udp(prefix+"h"+home, "0.0.0.0:5000")
	if err != nil {
		return got, err
	}
	defer inside.Close()
	unsent, err := udp(prefix+"h"+home, "0.0.0.0:5001")
	if err != nil {
		return got, err
	}
	defer unsent.Close()
	var out [4]*net.UDPConn // x, y (another host), z (x's host, another port), w (y's host)
	for i, addr := range []string{"11.99.0.1:6000", "11.99.0.9:6001", "11.99.0.1:6002", "11.99.0.9:6003"} {
		if out[i], err = udp(prefix+"pub", addr); err != nil {
			return got, err
		}
		defer out[i].Close()
	}
	x, y, z, w := out[0], out[1], out[2], out[3]

	// The mapping: what x and y see as the node's address.
	seen := func(c *net.UDPConn) (*net.UDPAddr, error) {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		_, from, err := c.ReadFromUDP(buf)
		return from, err
	}
	inside.WriteTo([]byte("to x"), x.LocalAddr())
	mx, err := seen(x)
	if err != nil {
		return got, fmt.Errorf("x heard nothing from the node: %w", err)
	}
	inside.WriteTo([]byte("to y"), y.LocalAddr())
	my, err := seen(y)
	if err != nil {
		return got, fmt.Errorf("y heard nothing from the node: %w", err)
	}
	got.eim = mx.String() == my.String()
	got.kept = mx.Port == 5000
	wantIP := "11.99.0." + fmt.Sprint(n+1) // the router's wan address
	if kind == "none" {
		wantIP = fmt.Sprintf("11.99.%d.2", n)
	}
	if mx.IP.String() != wantIP {
		return got, fmt.Errorf("x saw the node as %s, want address %s", mx, wantIP)
	}

	// The filter: z and w send to the mapping x saw, and to the port the
	// node never sent from; then x, whose answer always passes, sends a
	// last one. What arrives before it, or within a moment after (two
	// paths need not keep order), got through.
	z.WriteTo([]byte("z"), mx)
	w.WriteTo([]byte("w"), mx)
	w.WriteTo([]byte("u"), &net.UDPAddr{IP: mx.IP, Port: 5001})
	x.WriteTo([]byte("x"), mx)
	heard := map[string]bool{}
	read := func(c *net.UDPConn, until string, after time.Duration) error {
		deadline := time.Now().Add(2 * time.Second)
		if until == "" {
			deadline = time.Now().Add(after)
		}
		for {
			c.SetReadDeadline(deadline)
			buf := make([]byte, 64)
			k, _, err := c.ReadFromUDP(buf)
			if err != nil {
				if until == "" || heard[until] {
					return nil // the moment after is over
				}
				return fmt.Errorf("the answer from x never came: %w", err)
			}
			heard[string(buf[:k])] = true
			if string(buf[:k]) == until {
				deadline = time.Now().Add(after)
			}
		}
	}
	// u left before x: once x is in, a moment is enough for u too.
	if err := read(inside, "x", 300*time.Millisecond); err != nil {
		return got, err
	}
	if err := read(unsent, "", 300*time.Millisecond); err != nil {
		return got, err
	}
	got.otherPort, got.otherHost, got.unsent = heard["z"], heard["w"], heard["u"]
	return got, nil
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
