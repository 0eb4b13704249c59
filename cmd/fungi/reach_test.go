package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// The reach figures of docs/REACH.md, measured on the namespace network of
// examples/nat-roam.sh (two homes behind NAT, a relay between them, a third
// router for A to move to). FUNGI_REACH_ROUNDS sets the rounds (3 by
// default, as make test runs them); FUNGI_REACH_REPORT names a file the
// figures are appended to.

// reachRounds is how many rounds each measurement takes.
func reachRounds(t *testing.T) int {
	return testutil.EnvCount(t, "FUNGI_REACH_ROUNDS", 3, 1000)
}

// reachBatch is how many rounds run on one network: libp2p's resource
// manager lets a node open 16 connections to one IP address at once and
// then one every 5 s, and every relayed connection counts against the
// relay's address, so rounds back to back on one network would measure
// that limiter. Rounds past a batch run on a new network.
const reachBatch = 5

// inBatches runs rounds rounds of f, reachBatch at a time, each batch in a
// subtest of its own (so its network goes away with it), and returns what
// every round measured.
func inBatches(t *testing.T, rounds int, f func(t *testing.T, rounds int) []time.Duration) []time.Duration {
	var all []time.Duration
	for b := 0; b*reachBatch < rounds; b++ {
		n := min(reachBatch, rounds-b*reachBatch)
		t.Run(fmt.Sprintf("batch%d", b), func(t *testing.T) { all = append(all, f(t, n)...) })
		if t.Failed() {
			t.FailNow()
		}
	}
	return all
}

// reachNet is the roaming network with a relay and two daemons, A in home
// A and B in home B, whose routers let them meet only at the relay.
type reachNet struct {
	t       *testing.T
	ns      string
	dir     string
	rid     string
	aid     string
	bid     string
	relayTo string
}

func newReachNet(t *testing.T, transport string) *reachNet {
	if !netnsAvailable(t) {
		t.Skip("needs root, ip and iptables to build network namespaces")
	}
	dir := t.TempDir()
	n := &reachNet{t: t, dir: dir, ns: fmt.Sprintf("q%08x", crc32.ChecksumIEEE([]byte(dir)))}
	script := filepath.Join(testutil.RepoRoot(), "examples/nat-roam.sh")
	t.Cleanup(func() { exec.Command("bash", script, "down", n.ns).Run() })
	n.run("bash", script, "up", n.ns)
	for _, h := range []string{"a", "b"} {
		if err := quietHome(filepath.Join(dir, h)); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"r", "a", "b"} {
		n.fungi(h, "init")
	}
	n.rid = strings.TrimSpace(n.fungi("r", "info", "id"))
	n.aid = strings.TrimSpace(n.fungi("a", "info", "id"))
	n.bid = strings.TrimSpace(n.fungi("b", "info", "id"))
	listen, relayListen := "/ip4/0.0.0.0/udp/4433/quic-v1", "/ip4/11.99.0.1/udp/4001/quic-v1"
	if transport == "tcp" {
		listen, relayListen = "/ip4/0.0.0.0/tcp/4433", "/ip4/11.99.0.1/tcp/4001"
	}
	n.relayTo = relayListen + "/p2p/" + n.rid
	// Open: the join rounds bring a new device each.
	n.background(n.ns+"pub", "r", "relay", "--listen", relayListen, "--open")
	n.background(n.ns+"ha", "a", "daemon", "--listen", listen, "--relay", n.relayTo)
	n.background(n.ns+"hb", "b", "daemon", "--listen", listen, "--relay", n.relayTo)
	n.reserved("a")
	n.reserved("b")
	// Only the relay joins the homes, wherever A is.
	for _, a := range []string{"11.99.0.2", "11.99.0.4"} {
		n.run("ip", "netns", "exec", n.ns+"rb", "iptables", "-I", "FORWARD", "-s", a, "-j", "DROP")
		n.run("ip", "netns", "exec", n.ns+"rb", "iptables", "-I", "FORWARD", "-d", a, "-j", "DROP")
	}
	return n
}

func (n *reachNet) run(name string, args ...string) string {
	n.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// try runs the CLI on a home and returns its stdout.
func (n *reachNet) try(home string, args ...string) (string, error) {
	cmd := exec.Command("fungi", append([]string{"-f", filepath.Join(n.dir, home)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("fungi %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// fungi runs the CLI on a home and returns its stdout; a failure ends the
// test with the end of every daemon's log.
func (n *reachNet) fungi(home string, args ...string) string {
	n.t.Helper()
	out, err := n.try(home, args...)
	if err != nil {
		homes := []string{"r", "a", "b"}
		if !slices.Contains(homes, home) {
			homes = append(homes, home)
		}
		for _, h := range homes {
			if _, serr := os.Stat(filepath.Join(n.dir, h+".log")); serr == nil {
				n.logTail(h, 20)
			}
		}
		n.t.Fatal(err)
	}
	return out
}

// background runs fungi in a network namespace until stop is called or the
// test ends, when it is stopped as a user would (SIGINT).
func (n *reachNet) background(ns, home string, args ...string) (stop func()) {
	n.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "fungi", "-f", filepath.Join(n.dir, home)}, args...)...)
	log, err := os.Create(filepath.Join(n.dir, home+".log"))
	if err != nil {
		n.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	n.t.Cleanup(stop)
	switch args[0] {
	case "daemon":
		n.poll(30*time.Second, home+"'s daemon", func() error { _, err := n.try(home, "info", "id", "--json"); return err })
	case "relay":
		// The daemons started next reserve at once: a relay not yet
		// listening sends them into their retry backoff.
		n.poll(30*time.Second, home+"'s relay to serve", func() error {
			data, err := os.ReadFile(filepath.Join(n.dir, home+".log"))
			if err == nil && !bytes.Contains(data, []byte("fungi relay: serving")) {
				err = fmt.Errorf("not serving yet: %q", data)
			}
			return err
		})
	}
	return stop
}

// reserved waits for home's reservation on the relay (60 s, as the
// scripts' waitrelay: a loaded machine can push a node into the keeper's
// retry backoff).
func (n *reachNet) reserved(home string) {
	n.t.Helper()
	n.poll(60*time.Second, home+"'s reservation on the relay", func() error {
		out, err := n.try(home, "info", "reachability", "--json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"expires"`) {
			return fmt.Errorf("no reservation yet: %s", out)
		}
		return nil
	})
}

// logTail shows the end of a home's daemon log, for a failure.
func (n *reachNet) logTail(home string, lines int) {
	data, _ := os.ReadFile(filepath.Join(n.dir, home+".log"))
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	n.t.Logf("%s's log, last %d lines:\n%s", home, lines, strings.Join(all[max(0, len(all)-lines):], "\n"))
}

func (n *reachNet) poll(within time.Duration, what string, cond func() error) {
	n.t.Helper()
	testutil.WaitFor(n.t, within, what, cond)
}

// quantiles reports p50, p90 and the maximum of ds.
func quantiles(ds []time.Duration) (p50, p90, max time.Duration) {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.9), s[len(s)-1]
}

func reachReport(t *testing.T, what string, ds []time.Duration) (p50 time.Duration) {
	p50, p90, max := quantiles(ds)
	line := fmt.Sprintf("%s: %d rounds, p50 %.3f s, p90 %.3f s, max %.3f s", what, len(ds), p50.Seconds(), p90.Seconds(), max.Seconds())
	t.Log(line)
	if f := os.Getenv("FUNGI_REACH_REPORT"); f != "" {
		if w, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(w, line)
			w.Close()
		}
	}
	return p50
}

// Device join to the first remote command that succeeds through the relay:
// B prints an invite, A joins with it and asks B's capabilities. Each round
// starts with neither node knowing the other. Target: p50 ≤ 2 s.
func TestReachJoinToRemoteCommand(t *testing.T) {
	took := inBatches(t, reachRounds(t), reachJoin)
	if p50 := reachReport(t, "device join to first remote command through the relay", took); p50 > 2*time.Second {
		t.Errorf("p50 %s, target 2 s", p50)
	}
}

func reachJoin(t *testing.T, rounds int) []time.Duration {
	n := newReachNet(t, "quic")
	var took []time.Duration
	for round := range rounds {
		// A new device each round, that B has never seen: a device joins
		// once in its life.
		home := fmt.Sprintf("j%d", round)
		if err := quietHome(filepath.Join(n.dir, home)); err != nil {
			t.Fatal(err)
		}
		n.fungi(home, "init")
		stop := n.background(n.ns+"ha", home, "daemon", "--listen", "/ip4/0.0.0.0/udp/0/quic-v1", "--relay", n.relayTo)
		n.reserved(home)
		code := strings.TrimSpace(n.fungi("b", "device", "invite", "--role", "admin"))
		start := time.Now()
		if out, err := n.try(home, "device", "join", code, "--alias", "node-b"); err != nil || !strings.Contains(out, "joined node-b") {
			n.logTail(home, 20)
			n.logTail("b", 20)
			t.Fatalf("round %d: join said %q: %v", round, out, err)
		}
		caps := n.fungi(home, "peer", "capability", "--peer", "node-b", "--json")
		took = append(took, time.Since(start))
		if !strings.Contains(caps, "wasmtime") {
			t.Fatalf("round %d: capability said %q", round, caps)
		}
		conns := n.fungi(home, "connection", "list", "--json")
		var list []struct {
			PeerID  string `json:"peerId"`
			Relayed bool   `json:"relayed"`
		}
		if err := json.Unmarshal([]byte(conns), &list); err != nil {
			t.Fatalf("connection list --json: %v: %s", err, conns)
		}
		for _, c := range list {
			if c.PeerID == n.bid && !c.Relayed {
				t.Fatalf("round %d: a direct connection to B, where only the relay joins them: %s", round, conns)
			}
		}
		stop()
	}
	return took
}

// Address change to working access: A's node moves between two routers
// (a new LAN address behind a new public one) while its access entry to
// B's service is in use; each round ends at the first request through A's
// port that succeeds. Over TCP, whose connections the move leaves dead,
// and over QUIC, whose connections follow the node to its new address.
// Target: 10 s, every round.
func TestReachRoaming(t *testing.T) {
	for _, transport := range []string{"tcp", "quic"} {
		t.Run(transport, func(t *testing.T) {
			took := inBatches(t, reachRounds(t), func(t *testing.T, rounds int) []time.Duration {
				return reachRoaming(t, transport, rounds)
			})
			reachReport(t, "address change to working access ("+transport+")", took)
		})
	}
}

// attachFileBrowser runs the example file browser on B, pairs A and B and
// attaches it on A; get is one request through A's access port from A's
// namespace, which answers once the first has.
func (n *reachNet) attachFileBrowser(t *testing.T) (get func() error) {
	wasm := testutil.BuildWasm(t, "examples/apps/filebrowser-lite")
	if err := copyExamples(n.dir, wasm); err != nil {
		t.Fatal(err)
	}
	n.fungi("b", "service", "pull", filepath.Join(n.dir, "examples/service-manifests/filebrowser-lite-wasi.service.yaml"))
	n.fungi("b", "service", "start", "filebrowser-lite-wasi")
	n.fungi("b", "device", "trust", n.aid)
	n.fungi("a", "device", "add", n.bid, "--alias", "node-b")
	out := n.fungi("a", "access", "attach", "filebrowser-lite-wasi", "--peer", "node-b")
	_, port, ok := strings.Cut(strings.TrimSpace(out), "127.0.0.1:")
	if !ok {
		t.Fatalf("access attach said %q", out)
	}
	url := "http://127.0.0.1:" + port + "/api/list?path=/"
	get = func() error {
		code, err := nsGet(n.ns+"ha", url, 2*time.Second)
		if err == nil && code != 200 {
			err = fmt.Errorf("HTTP %d", code)
		}
		return err
	}
	n.poll(30*time.Second, "B's service through A's port", get)
	return get
}

func reachRoaming(t *testing.T, transport string, rounds int) []time.Duration {
	n := newReachNet(t, transport)
	get := n.attachFileBrowser(t)
	script := filepath.Join(testutil.RepoRoot(), "examples/nat-roam.sh")
	var took []time.Duration
	for round := range rounds {
		where := "move"
		if round%2 == 1 {
			where = "back"
		}
		start := time.Now()
		n.run("bash", script, where, n.ns)
		if err := testutil.Poll(10*time.Second, get); err != nil {
			n.logTail("a", 40)
			t.Fatalf("round %d (%s): access not working %s after the address change: %v", round, where, time.Since(start).Round(time.Millisecond), err)
		}
		took = append(took, time.Since(start))
	}
	return took
}
