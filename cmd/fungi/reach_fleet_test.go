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
	"sync"
	"testing"
	"time"
)

// A fleet: one person's devices, each in a network namespace of its own
// behind a home router that masquerades (Linux conntrack: port-restricted
// filtering), fleetPerHome to a home, on a namespace internet with three
// public `fungi relay serve` nodes given to every node only as --bootstrap
// (no relays: anywhere). One admin node, in a home of its own, pairs with
// every device by invite and runs a remote command on each; then every
// device restarts on a new port at once (a power cut) and the admin reaches
// each again without re-adding it. At each size step the admin's memory and
// connections and the public nodes' reservations are reported.
// FUNGI_FLEET_SIZE sets the fleet (4 by default, as make test runs it;
// make drill runs 50, in steps of 10 and 25 first). docs/REACH.md has the
// figures.

// fleetPerHome is how many devices share one home router (one public IP):
// a household's share of a public relay is bounded per IP (8 reservations
// by default in circuit relay v2).
const fleetPerHome = 10

// fleetSize is the number of devices, FUNGI_FLEET_SIZE or 4.
func fleetSize(t *testing.T) int {
	t.Helper()
	s := os.Getenv("FUNGI_FLEET_SIZE")
	if s == "" {
		return 4
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 200 {
		t.Fatalf("FUNGI_FLEET_SIZE=%q: want a number from 1 to 200", s)
	}
	return n
}

// fleetSteps are the sizes measured on the way to size: 10 and 25 first
// where the fleet is larger.
func fleetSteps(size int) []int {
	var steps []int
	for _, s := range []int{10, 25} {
		if s < size {
			steps = append(steps, s)
		}
	}
	return append(steps, size)
}

// fleetNet is the namespace internet of the fleet; reachNet's helpers run
// the CLI and the daemons.
type fleetNet struct {
	*reachNet
	prefix    string
	bootstrap []string
	publicIDs []string
	devices   []string
	stops     map[string]func()
	nodeNS    map[string]string
	linkSeq   int
}

func newFleetNet(t *testing.T) *fleetNet {
	if !netnsAvailable(t) {
		t.Skip("needs root, ip and iptables to build network namespaces")
	}
	dir := t.TempDir()
	p := fmt.Sprintf("l%06x", crc32.ChecksumIEEE([]byte(dir))&0xffffff)
	f := &fleetNet{reachNet: &reachNet{t: t, dir: dir, ns: p}, prefix: p, stops: map[string]func(){}, nodeNS: map[string]string{}}
	internet := p + "i"
	f.addNS(internet)
	f.run("ip", "-n", internet, "link", "add", "br0", "type", "bridge")
	f.run("ip", "-n", internet, "link", "set", "br0", "up")
	for i, h := range []string{"r1", "r2", "r3"} {
		ns := p + h
		f.addNS(ns)
		ip := fmt.Sprintf("11.98.0.%d", i+1)
		f.link(ns, "eth0", ip+"/16", internet, "br0")
		f.home(h, ns)
		id := strings.TrimSpace(f.fungi(h, "info", "id"))
		f.publicIDs = append(f.publicIDs, id)
		f.bootstrap = append(f.bootstrap, "/ip4/"+ip+"/udp/4001/quic-v1/p2p/"+id, "/ip4/"+ip+"/tcp/4001/p2p/"+id)
	}
	for i, h := range []string{"r1", "r2", "r3"} {
		ip := fmt.Sprintf("11.98.0.%d", i+1)
		args := []string{"relay", "--listen", "/ip4/" + ip + "/udp/4001/quic-v1", "--listen", "/ip4/" + ip + "/tcp/4001", "--open"}
		f.stops[h] = f.background(f.nodeNS[h], h, append(args, f.bootstrapFlags()...)...)
	}
	return f
}

// addNS makes a namespace with its loopback up, removed when the test ends.
func (f *fleetNet) addNS(ns string) {
	f.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	f.run("ip", "netns", "add", ns)
	f.run("ip", "-n", ns, "link", "set", "lo", "up")
}

// link joins ns to bridge in brNS with a veth named dev in ns, addressed
// cidr.
func (f *fleetNet) link(ns, dev, cidr, brNS, bridge string) {
	f.linkSeq++
	a, b := fmt.Sprintf("%sa%d", f.prefix, f.linkSeq), fmt.Sprintf("%sb%d", f.prefix, f.linkSeq)
	f.run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
	f.run("ip", "link", "set", a, "netns", ns)
	f.run("ip", "link", "set", b, "netns", brNS)
	f.run("ip", "-n", ns, "link", "set", a, "name", dev)
	f.run("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
	f.run("ip", "-n", ns, "link", "set", dev, "up")
	f.run("ip", "-n", brNS, "link", "set", b, "master", bridge)
	f.run("ip", "-n", brNS, "link", "set", b, "up")
}

// router adds home router h: 11.98.1.h on the internet, 10.77.h.1/24 on
// its LAN bridge, masquerading what leaves.
func (f *fleetNet) router(h int) string {
	ns := fmt.Sprintf("%sh%d", f.prefix, h)
	f.addNS(ns)
	f.link(ns, "eth0", fmt.Sprintf("11.98.1.%d/16", h), f.prefix+"i", "br0")
	f.run("ip", "-n", ns, "link", "add", "lan", "type", "bridge")
	f.run("ip", "-n", ns, "addr", "add", fmt.Sprintf("10.77.%d.1/24", h), "dev", "lan")
	f.run("ip", "-n", ns, "link", "set", "lan", "up")
	f.run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	f.run("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE")
	return ns
}

// node adds a node's namespace as host i of home router h's LAN.
func (f *fleetNet) node(name string, h, i int) string {
	ns := f.prefix + name
	f.addNS(ns)
	f.link(ns, "eth0", fmt.Sprintf("10.77.%d.%d/24", h, 10+i), fmt.Sprintf("%sh%d", f.prefix, h), "lan")
	f.run("ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.77.%d.1", h))
	return ns
}

// home makes a node's folder for namespace ns.
func (f *fleetNet) home(name, ns string) {
	if err := quietHome(filepath.Join(f.dir, name)); err != nil {
		f.t.Fatal(err)
	}
	f.fungi(name, "init")
	f.nodeNS[name] = ns
}

func (f *fleetNet) bootstrapFlags() []string {
	var out []string
	for _, b := range f.bootstrap {
		out = append(out, "--bootstrap", b)
	}
	return out
}

// daemon starts name's daemon on port with the public nodes as bootstrap.
func (f *fleetNet) daemon(name string, port int) {
	p := strconv.Itoa(port)
	args := append([]string{"daemon", "--listen", "/ip4/0.0.0.0/udp/" + p + "/quic-v1", "--listen", "/ip4/0.0.0.0/tcp/" + p}, f.bootstrapFlags()...)
	f.stops[name] = f.background(f.nodeNS[name], name, args...)
}

// addDevices grows the fleet to n devices, each in the next place of a
// home, with its daemon up and a slot on a relay it found in the DHT.
func (f *fleetNet) addDevices(n int) {
	start := len(f.devices)
	for k := start; k < n; k++ {
		h, i := 2+k/fleetPerHome, k%fleetPerHome
		if i == 0 {
			f.router(h)
		}
		name := fmt.Sprintf("d%d", k+1)
		f.home(name, f.node(name, h, i))
		f.daemon(name, 4433)
		f.devices = append(f.devices, name)
	}
	for _, name := range f.devices[start:] {
		f.reserved(name)
	}
}

// pair pairs admin with device by invite (the device invites, the admin
// joins) and returns how long from `device join` to the first remote
// command's answer.
func (f *fleetNet) pair(device string) (time.Duration, error) {
	code := strings.TrimSpace(f.fungi(device, "device", "invite", "--role", "admin"))
	start := time.Now()
	if out, err := f.try("admin", "device", "join", code, "--alias", device); err != nil {
		return 0, fmt.Errorf("join %s: %q: %v", device, out, err)
	}
	if _, err := f.try("admin", "peer", "capability", "--peer", device, "--json"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// reachAgain waits up to within for the admin's first remote command to
// device to answer and returns how long it took from since.
func (f *fleetNet) reachAgain(device string, since time.Time, within time.Duration) (time.Duration, error) {
	var last error
	for time.Since(since) < within {
		if _, err := f.try("admin", "peer", "capability", "--peer", device, "--json"); err == nil {
			return time.Since(since), nil
		} else {
			last = err
		}
	}
	return 0, fmt.Errorf("%s not reached again within %s: %v", device, within, last)
}

// fleetInfo is what `info reachability --json` says that the report needs.
type fleetInfo struct {
	RelayReservations []struct {
		RelayPeerID string `json:"relayPeerId"`
		Expires     string `json:"expires"`
	} `json:"relayReservations"`
}

func (f *fleetNet) info(name string, args ...string) fleetInfo {
	var fi fleetInfo
	out := f.fungi(name, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), &fi); err != nil {
		f.t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return fi
}

// rssMiB is a process's resident memory.
func rssMiB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return -1
}

// report logs the admin's memory and connections and the reservations on
// each public node, for a fleet of n.
func (f *fleetNet) report(n int) string {
	var st struct {
		Node struct {
			Pid int `json:"pid"`
		} `json:"node"`
	}
	if out := f.fungi("admin", "status", "--json"); json.Unmarshal([]byte(out), &st) != nil {
		f.t.Fatalf("status --json: %s", out)
	}
	conns := strings.Count(f.fungi("admin", "connection", "list", "--json"), `"peerId"`)
	slots := map[string]int{}
	without := 0
	for _, d := range f.devices {
		held := 0
		for _, r := range f.info(d, "info", "reachability").RelayReservations {
			if r.Expires != "" {
				slots[r.RelayPeerID]++
				held++
			}
		}
		if held == 0 {
			without++
		}
	}
	var per []string
	for i, id := range f.publicIDs {
		per = append(per, fmt.Sprintf("r%d %d", i+1, slots[id]))
	}
	return fmt.Sprintf("%d devices: admin RSS %.0f MiB, %d connections; reservations per public node: %s; devices without one: %d",
		n, rssMiB(st.Node.Pid), conns, strings.Join(per, ", "), without)
}

func TestReachFleet(t *testing.T) {
	size := fleetSize(t)
	f := newFleetNet(t)
	f.router(1)
	f.home("admin", f.node("admin", 1, 0))
	f.daemon("admin", 4433)
	f.reserved("admin")

	var paired []time.Duration
	failures := 0
	for _, step := range fleetSteps(size) {
		from := len(f.devices)
		f.addDevices(step)
		for _, d := range f.devices[from:] {
			took, err := f.pair(d)
			if err != nil {
				failures++
				t.Errorf("fleet of %d: %v", step, err)
				continue
			}
			paired = append(paired, took)
		}
		t.Log(f.report(step))
	}
	reachReport(t, fmt.Sprintf("fleet of %d: device join to first remote command", size), paired)

	// A power cut: every device comes back on another port; the admin's
	// book still holds the old addresses. Each is timed from its own
	// daemon being up (they start one after another) to the admin's first
	// remote command that answers.
	for _, d := range f.devices {
		f.stops[d]()
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var again []time.Duration
	for _, d := range f.devices {
		f.daemon(d, 4434)
		up := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			took, err := f.reachAgain(d, up, 30*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				t.Error(err)
				return
			}
			again = append(again, took)
		}()
	}
	wg.Wait()
	if len(again) > 0 {
		p50, p90, _ := quantiles(again)
		reachReport(t, fmt.Sprintf("fleet of %d: each device restarted on a new port, to the admin's first remote command", size), again)
		// The p90 of fewer than ten is the slowest one, which a known
		// outlier (about 15 s, docs/REACH.md) may be; every device is
		// held to 30 s above.
		if p50 > 10*time.Second || (len(again) >= 10 && p90 > 10*time.Second) {
			t.Errorf("p50 %.1f s, p90 %.1f s to reach a restarted device again; target 10 s", p50.Seconds(), p90.Seconds())
		}
	}
	t.Log(f.report(size))
	if failures > 0 {
		t.Errorf("%d of %d devices failed a step", failures, size)
	}
}
