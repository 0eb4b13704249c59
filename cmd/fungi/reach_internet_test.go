package main

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// Reach with nothing set up, on a namespace internet with a DHT of its own:
// three public `fungi relay serve` nodes, which every home is given only as
// --bootstrap (no relays: anywhere), and two homes behind NAT routers
// (examples/nat-testnet.sh and nat-roam.sh). The homes find relays through
// the DHT, pair by invite, and find each other again after a restart on a
// new port and a move to another router. FUNGI_INTERNET_ROUNDS sets the
// join rounds (3 by default, as make test runs them; make drill runs more).

// internetRounds is how many join rounds each pairing measurement takes:
// 3 by default, the fewest whose p50 is not the slowest round.
func internetRounds(t *testing.T) int {
	return testutil.EnvCount(t, "FUNGI_INTERNET_ROUNDS", 3, reachBatch) // one network holds that many joiners
}

// internetPublic are the public nodes' addresses on the internet segment
// (nat-testnet.sh's bridge, 11.99.0.0/24).
var internetPublic = []string{"11.99.0.11", "11.99.0.12", "11.99.0.13"}

// internetNet is the namespace internet: reachNet's helpers, the public
// nodes' bootstrap addresses and IDs.
type internetNet struct {
	*reachNet
	bootstrap []string
	publicIDs []string
	// stopB stops B's daemon.
	stopB func()
}

// newInternetNet builds the network with home A's router of kind natA and
// B's of natB, starts the three public nodes, and daemons a and b, each
// waiting for a slot on a relay it found through the DHT.
func newInternetNet(t *testing.T, natA, natB string) *internetNet {
	if !netnsAvailable(t) {
		t.Skip("needs root, ip and iptables to build network namespaces")
	}
	if (natA == "eim" || natB == "eim") && !natNFTAvailable(t) {
		t.Skip("needs nft for the eim router kind")
	}
	dir := t.TempDir()
	n := &internetNet{reachNet: &reachNet{t: t, dir: dir, ns: fmt.Sprintf("i%08x", crc32.ChecksumIEEE([]byte(dir)))}}
	script := filepath.Join(testutil.RepoRoot(), "examples/nat-roam.sh")
	t.Cleanup(func() { exec.Command("bash", script, "down", n.ns).Run() })
	up := exec.Command("bash", script, "up", n.ns)
	up.Env = append(os.Environ(), "NAT_A="+natA, "NAT_B="+natB)
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("NAT_A=%s NAT_B=%s nat-roam.sh up %s: %v\n%s", natA, natB, n.ns, err, out)
	}
	homes := []string{"r", "p1", "p2", "a", "b"}
	for _, h := range homes {
		if err := quietHome(filepath.Join(dir, h)); err != nil {
			t.Fatal(err)
		}
		n.fungi(h, "init")
	}
	for i, h := range []string{"r", "p1", "p2"} {
		ip := internetPublic[i]
		n.run("ip", "-n", n.ns+"pub", "addr", "add", ip+"/24", "dev", "br0")
		id := strings.TrimSpace(n.fungi(h, "info", "id"))
		n.publicIDs = append(n.publicIDs, id)
		n.bootstrap = append(n.bootstrap, "/ip4/"+ip+"/udp/4001/quic-v1/p2p/"+id, "/ip4/"+ip+"/tcp/4001/p2p/"+id)
	}
	for i, h := range []string{"r", "p1", "p2"} {
		ip := internetPublic[i]
		args := []string{"relay", "--listen", "/ip4/" + ip + "/udp/4001/quic-v1", "--listen", "/ip4/" + ip + "/tcp/4001", "--open"}
		n.background(n.ns+"pub", h, append(args, n.bootstrapFlags()...)...)
	}
	n.aid = strings.TrimSpace(n.fungi("a", "info", "id"))
	n.bid = strings.TrimSpace(n.fungi("b", "info", "id"))
	n.startHome("a", n.ns+"ha", 4433)
	n.stopB = n.startHome("b", n.ns+"hb", 4433)
	return n
}

// bootstrapFlags are --bootstrap flags naming every public node.
func (n *internetNet) bootstrapFlags() []string {
	var out []string
	for _, b := range n.bootstrap {
		out = append(out, "--bootstrap", b)
	}
	return out
}

// startHome runs home's daemon in namespace ns on port (0: any), with the
// public nodes as its only bootstrap and no relay, and waits for its slot
// on a relay found through the DHT.
func (n *internetNet) startHome(home, ns string, port int) (stop func()) {
	n.t.Helper()
	p := strconv.Itoa(port)
	args := append([]string{"daemon", "--listen", "/ip4/0.0.0.0/udp/" + p + "/quic-v1", "--listen", "/ip4/0.0.0.0/tcp/" + p}, n.bootstrapFlags()...)
	begin := time.Now()
	stop = n.background(ns, home, args...)
	n.reserved(home)
	n.t.Logf("%s: up and holding a slot on a relay found through the DHT in %.3f s", home, time.Since(begin).Seconds())
	return stop
}

// join pairs a new device in home A's LAN with B by invite, and returns
// how long from `device join` to the first remote command's answer.
func (n *internetNet) join(round int) time.Duration {
	n.t.Helper()
	home := fmt.Sprintf("j%d", round)
	if err := quietHome(filepath.Join(n.dir, home)); err != nil {
		n.t.Fatal(err)
	}
	n.fungi(home, "init")
	stop := n.startHome(home, n.ns+"ha", 0)
	defer stop()
	code := strings.TrimSpace(n.fungi("b", "device", "invite", "--role", "admin"))
	start := time.Now()
	if out, err := n.try(home, "device", "join", code, "--alias", "node-b"); err != nil || !strings.Contains(out, "joined node-b") {
		n.logTail(home, 30)
		n.logTail("b", 30)
		n.t.Fatalf("round %d: join said %q: %v", round, out, err)
	}
	joined := time.Since(start)
	caps := n.fungi(home, "peer", "capability", "--peer", "node-b", "--json")
	took := time.Since(start)
	n.t.Logf("round %d: joined in %.3f s, first remote command answered %.3f s later", round, joined.Seconds(), (took - joined).Seconds())
	if !strings.Contains(caps, "wasmtime") {
		n.t.Fatalf("round %d: capability said %q", round, caps)
	}
	return took
}

// connToB is home's connection to B as connection list shows it.
func (n *internetNet) connToB(home string) (remote string, relayed bool, err error) {
	out, err := n.try(home, "connection", "list", "--json")
	if err != nil {
		return "", false, err
	}
	var list []struct {
		PeerID     string `json:"peerId"`
		RemoteAddr string `json:"remoteAddr"`
		Relayed    bool   `json:"relayed"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return "", false, fmt.Errorf("connection list --json: %v: %s", err, out)
	}
	for _, c := range list {
		if c.PeerID == n.bid {
			if !c.Relayed {
				return c.RemoteAddr, false, nil
			}
			remote, relayed = c.RemoteAddr, true
		}
	}
	if remote == "" {
		return "", false, fmt.Errorf("no connection to B: %s", out)
	}
	return remote, relayed, nil
}

// reachWithin is the target for reaching B again after a restart or a
// move, in make test as in the drill.
const reachWithin = 10 * time.Second

// reachB measures, from start, until A's first remote command to B
// answers.
func (n *internetNet) reachB(what string, start time.Time) time.Duration {
	n.t.Helper()
	within := reachWithin
	err := testutil.Poll(within, func() error {
		_, err := n.try("a", "peer", "capability", "--peer", "node-b", "--json")
		return err
	})
	took := time.Since(start)
	if err == nil && took > within {
		err = fmt.Errorf("the command that answered took until %.3f s", took.Seconds())
	}
	if err != nil {
		n.logTail("a", 40)
		n.logTail("b", 40)
		n.t.Fatalf("%s: B not reached again within %s: %v", what, within, err)
	}
	return took
}

// Two homes behind port-restricted NATs (apdf), with nothing configured
// but the public nodes as bootstrap: new devices pair with B by invite,
// first remote command p50 ≤ 2 s; then A and B stay paired while B
// restarts on a new port and moves to another router, and A reaches it
// again within 10 s each time without re-adding it.
func TestReachInternetPortRestricted(t *testing.T) {
	n := newInternetNet(t, "apdf", "apdf")
	var took []time.Duration
	for round := range internetRounds(t) {
		took = append(took, n.join(round))
	}
	if p50 := reachReport(t, "internet, port-restricted × port-restricted: device join to first remote command", took); p50 > 2*time.Second {
		t.Errorf("p50 %s, target 2 s", p50)
	}

	// A and B pair by invite too, then B changes address twice.
	code := strings.TrimSpace(n.fungi("b", "device", "invite", "--role", "admin"))
	n.fungi("a", "device", "join", code, "--alias", "node-b")
	n.fungi("a", "peer", "capability", "--peer", "node-b", "--json")

	var restarts, moves []time.Duration
	// One restart and one move in make test, to keep it short; make drill
	// runs FUNGI_INTERNET_ROUNDS of each in a row on one network.
	changes := 1
	if os.Getenv("FUNGI_INTERNET_ROUNDS") != "" {
		changes = internetRounds(t)
	}
	for round := range changes {
		n.stopB()
		start := time.Now()
		n.stopB = n.startHome("b", n.ns+"hb", 4434+round)
		restarts = append(restarts, n.reachB(fmt.Sprintf("round %d: restart on port %d", round, 4434+round), start))

		// To the fourth router and back, in turns.
		where := "moveb"
		if round%2 == 1 {
			where = "backb"
		}
		start = time.Now()
		n.run("bash", filepath.Join(testutil.RepoRoot(), "examples/nat-roam.sh"), where, n.ns)
		moves = append(moves, n.reachB(fmt.Sprintf("round %d: %s to another router", round, where), start))
	}
	reachReport(t, "internet: B's daemon started again on a new port to A's first remote command", restarts)
	reachReport(t, "internet: B moved to another router to A's first remote command", moves)
}

// Symmetric × port-restricted: no hole can be punched, so the two homes
// stay relayed for good, through a public node each found in the DHT.
func TestReachInternetSymmetric(t *testing.T) {
	n := newInternetNet(t, "sym", "apdf")
	var took []time.Duration
	for round := range internetRounds(t) {
		took = append(took, n.join(round))
	}
	if p50 := reachReport(t, "internet, symmetric × port-restricted: device join to first remote command", took); p50 > 2*time.Second {
		t.Errorf("p50 %s, target 2 s", p50)
	}
	code := strings.TrimSpace(n.fungi("b", "device", "invite", "--role", "admin"))
	n.fungi("a", "device", "join", code, "--alias", "node-b")
	n.fungi("a", "peer", "capability", "--peer", "node-b", "--json")
	remote, relayed, err := n.connToB("a")
	if err != nil {
		t.Fatal(err)
	}
	if !relayed {
		t.Fatalf("A reaches B directly at %s across a symmetric NAT; want a relayed connection", remote)
	}
	public := false
	for _, id := range n.publicIDs {
		public = public || strings.Contains(remote, id)
	}
	if !public {
		t.Fatalf("A reaches B through %s, none of the public nodes %v", remote, n.publicIDs)
	}
	t.Logf("A reaches B relayed through %s", remote)
	// For good: the relayed connection carries later commands too.
	for range 3 {
		n.fungi("a", "peer", "capability", "--peer", "node-b", "--json")
	}
}
