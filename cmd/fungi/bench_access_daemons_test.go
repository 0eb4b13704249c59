package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// The access path as a user runs it: two real `fungi daemon` processes on
// loopback (mDNS, port mapping and the DHT off), a native echo server and
// a sink published on B with `fungi service expose`, attached on A with
// `fungi access attach`, a client on A's local port. The same echo server
// and sink are reached in the same run directly and through `ssh -L`
// (aes128-gcm), and fungi runs once with TCP and once with QUIC between
// the daemons. A bare relay (testdata/relay: two C processes that only
// read and write, no encryption) is the machine's floor for any
// forwarder, the column a ratio to ssh -L is read against.
//
// By default (`make test`) it is a smoke run of a few iterations that
// proves the harness works; with FUNGI_BENCH_ACCESS_DAEMONS=1 (`make
// bench`) it measures and prints the table:
//
//	FUNGI_BENCH_ACCESS_DAEMONS=1 go test -count=1 -run TestAccessDaemonsBench -v ./cmd/fungi
//
// New connections are measured twice: first on the freshly started
// daemons, then after FUNGI_BENCH_ACCESS_WARM (1,000) more through every
// path, ssh -L's included, which is what a daemon that has run for a while
// gives. A fresh daemon's memory grows over its first ~600 connections,
// and on a VM whose host backs guest memory on first touch every new page
// costs 5–17 µs instead of 0.3 (the page-fault rows show it).
//
// Besides the latencies and rates it reports the CPU time the forwarding
// processes spend per new connection: both daemons for fungi, the ssh
// client and sshd (with its session processes) for ssh -L. On a shared
// machine that figure moves far less with the load than the latencies.
//
// The latency measures take their samples in turns over the paths, a
// short run on each (benchTurn samples, the first of which is not kept:
// it shares the machine with the work the path before left behind, such
// as its connections' teardown), so a change in the machine's load
// touches every path alike and the ratios hold on a busy machine.
//
// FUNGI_BENCH_CPUPROFILE=DIR has every daemon write a CPU profile there
// (FUNGI_CPUPROFILE in the daemon); FUNGI_BENCH_ACCESS_ONLY=new (a part of
// a measure's name) runs only that measure, to profile it;
// FUNGI_BENCH_ACCESS_NEW=3000 makes that many new connections instead of
// 300, FUNGI_BENCH_ACCESS_KEPT that many kept round trips instead of 2,000;
// FUNGI_BENCH_ACCESS_BLOCKS=10 first makes ten runs of new connections on
// the same daemons and prints each run's p50 and CPU by path;
// FUNGI_BENCH_ACCESS_MIB=1024 sends that many MiB per throughput run
// instead of 128 (a long transfer: steady state, not ramp-up);
// FUNGI_BENCH_ACCESS_TRANSPORT=tcp (or quic) starts only that daemon pair;
// FUNGI_BENCH_DAEMON_ENV="GOMAXPROCS=1 GOGC=200" adds to the daemons'
// environment.
// FUNGI_BENCH_ACCESS_BASE=/path/to/fungi adds a pair of daemons of that
// build over TCP (base-tcp) and a tcp / base column: a change measured
// against the build before it, in the same run, in the same turns. Give
// the build under test as FUNGI_BENCH_ACCESS_FUNGI=/path/to/fungi too
// (`go build -o`): the test binary standing in for fungi runs some 5-10%
// faster than a built one, which would count as the change's.
func TestAccessDaemonsBench(t *testing.T) {
	full := os.Getenv("FUNGI_BENCH_ACCESS_DAEMONS") == "1"
	n := benchCounts{kept: 20, fresh: 5, streamBytes: 1 << 20, rounds: 1}
	if full {
		n = benchCounts{kept: 2000, fresh: 300, warm: 1000, streamBytes: 128 << 20, rounds: 5}
	}
	if os.Getenv("FUNGI_BENCH_ACCESS_WARM") == "0" {
		n.warm = 0 // the fresh daemons only
	} else {
		n.warm = testutil.EnvCount(t, "FUNGI_BENCH_ACCESS_WARM", n.warm, 100000)
	}
	n.fresh = testutil.EnvCount(t, "FUNGI_BENCH_ACCESS_NEW", n.fresh, 100000)
	n.kept = testutil.EnvCount(t, "FUNGI_BENCH_ACCESS_KEPT", n.kept, 1000000)
	n.streamBytes = testutil.EnvCount(t, "FUNGI_BENCH_ACCESS_MIB", n.streamBytes>>20, 100000) << 20
	fungi, err := exec.LookPath("fungi") // the test binary as fungi, put on PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	if build := os.Getenv("FUNGI_BENCH_ACCESS_FUNGI"); build != "" {
		fungi = build
	}
	echo, sink := testutil.ServeEcho(t), testutil.ServeSink(t) // the native services
	paths := []benchPath{{name: "direct", echo: echo, sink: sink}}
	for _, tr := range []struct{ name, listen string }{
		{"fungi-tcp", "/ip4/127.0.0.1/tcp/0"},
		{"fungi-quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		if only := os.Getenv("FUNGI_BENCH_ACCESS_TRANSPORT"); only != "" && !strings.HasSuffix(tr.name, only) {
			continue
		}
		p := benchPath{name: tr.name}
		p.echo, p.sink, p.pids = attachedPair(t, fungi, tr.name, tr.listen, echo, sink)
		paths = append(paths, p)
	}
	if base := os.Getenv("FUNGI_BENCH_ACCESS_BASE"); base != "" {
		p := benchPath{name: "base-tcp"}
		p.echo, p.sink, p.pids = attachedPair(t, base, "base-tcp", "/ip4/127.0.0.1/tcp/0", echo, sink)
		paths = append(paths, p)
	}
	if e, s, pids, ok := sshForward(t, echo, sink); ok {
		paths = append(paths, benchPath{name: "ssh-L", echo: e, sink: s, pids: pids}) // without sshd, StartSSHD says so
	}
	if e, s, pids, ok := bareRelay(t, echo, sink); ok {
		paths = append(paths, benchPath{name: "relay", echo: e, sink: s, pids: pids})
	}

	// The latencies are sampled in turns over the paths; a throughput run
	// is long, so each path has its runs back to back, the paths one after
	// the other.
	const freshRow = "new connection + first round trip p50, fresh daemons"
	measures := []benchMeasure{
		{freshRow, "µs", func(ps []benchPath) map[string][]float64 { return newConnections(t, ps, n.fresh) }},
		{"kept connection, round trip p50", "µs", func(ps []benchPath) map[string][]float64 { return keptRoundTrips(t, ps, n.kept) }},
		{"new connection + first round trip p50", "µs", func(ps []benchPath) map[string][]float64 { return newConnections(t, ps, n.fresh) }},
		{"one stream", "MB/s", func(ps []benchPath) map[string][]float64 { return throughputs(t, ps, 1, n) }},
		{"8 streams", "MB/s", func(ps []benchPath) map[string][]float64 { return throughputs(t, ps, 8, n) }},
	}
	results := map[string]map[string][]float64{}
	const cpuRow = "CPU per new connection (forwarders)"
	const switchRow = "thread switches per new connection (forwarders)"
	const keptSwitchRow = "thread switches per kept round trip (forwarders)"
	const keptCPURow = "CPU per kept round trip (forwarders)"
	const streamsCPURow = "CPU per GiB, 8 streams (forwarders)"
	const freshFaultRow = "page faults per new connection, fresh daemons (forwarders)"
	const faultRow = "page faults per new connection (forwarders)"
	derived := []string{cpuRow, switchRow, freshFaultRow, faultRow, keptSwitchRow, keptCPURow, streamsCPURow}
	for _, row := range derived {
		results[row] = map[string][]float64{}
	}
	if blocks := testutil.EnvCount(t, "FUNGI_BENCH_ACCESS_BLOCKS", 0, 1000); blocks > 0 {
		newConnectionBlocks(t, paths, n.fresh, blocks)
	}
	only := os.Getenv("FUNGI_BENCH_ACCESS_ONLY")
	for _, m := range measures {
		results[m.name] = map[string][]float64{}
		if !strings.Contains(m.name, only) {
			continue
		}
		// The forwarders of a path work only for that path's connections,
		// so each path's CPU is told apart even with the turns.
		before := spentBefore(paths)
		results[m.name] = m.run(paths)
		for _, p := range paths[1:] { // not direct: nothing forwards
			if p.name == "relay" {
				continue // its threads end with their connections, and their CPU time with them
			}
			used := spentBy(p).less(before[p.name])
			switch {
			case m.name == freshRow:
				results[freshFaultRow][p.name] = []float64{used.faultsEach(n.fresh)}
			case strings.HasPrefix(m.name, "kept"):
				results[keptSwitchRow][p.name] = []float64{used.switchesEach(n.kept)}
				results[keptCPURow][p.name] = []float64{used.cpuEach(n.kept, time.Microsecond)}
			case strings.HasPrefix(m.name, "8 streams"):
				gib := float64(n.streamBytes) * float64(n.rounds) / (1 << 30)
				results[streamsCPURow][p.name] = []float64{float64(used.cpu) / float64(time.Millisecond) / gib}
			case strings.HasPrefix(m.name, "new connection"):
				results[cpuRow][p.name] = []float64{used.cpuEach(n.fresh, time.Microsecond)}
				results[switchRow][p.name] = []float64{used.switchesEach(n.fresh)}
				results[faultRow][p.name] = []float64{used.faultsEach(n.fresh)}
			}
		}
		if m.name == freshRow && n.warm > 0 {
			newConnections(t, paths, n.warm) // what a daemon that has run a while has behind it
		}
	}
	measures = append(measures, benchMeasure{cpuRow, "µs", nil}, benchMeasure{switchRow, "", nil},
		benchMeasure{freshFaultRow, "", nil}, benchMeasure{faultRow, "", nil}, benchMeasure{keptSwitchRow, "", nil},
		benchMeasure{keptCPURow, "µs", nil}, benchMeasure{streamsCPURow, "ms", nil})
	if !full {
		return
	}
	fmt.Printf("\n# access through two fungi daemons on %s, %d cores, load average %s\n\n", testutil.CPUModel(), runtime.NumCPU(), testutil.LoadAvg())
	cols := []string{"direct", "fungi-tcp", "fungi-quic", "ssh-L", "relay"}
	ratios := [][2]string{{"fungi-tcp", "ssh-L"}, {"fungi-quic", "ssh-L"}, {"relay", "ssh-L"}}
	ratioNames := []string{"tcp / ssh", "quic / ssh", "relay / ssh"}
	if os.Getenv("FUNGI_BENCH_ACCESS_BASE") != "" {
		cols = append(cols, "base-tcp")
		ratios = append(ratios, [2]string{"fungi-tcp", "base-tcp"})
		ratioNames = append(ratioNames, "tcp / base")
	}
	fmt.Printf("| measure | %s | %s |\n|%s\n", strings.Join(cols, " | "), strings.Join(ratioNames, " | "), strings.Repeat(" --- |", len(cols)+len(ratios)+1))
	for _, m := range measures {
		r := results[m.name]
		row := []string{m.name}
		for _, c := range cols {
			v := r[c]
			switch {
			case len(v) == 0:
				row = append(row, "–")
			case len(v) == 2:
				row = append(row, fmt.Sprintf("%.0f (p90 %.0f) %s", v[0], v[1], m.unit))
			default:
				row = append(row, strings.TrimSpace(fmt.Sprintf("%.*f %s", precision(v[0]), v[0], m.unit)))
			}
		}
		for _, q := range ratios {
			if len(r[q[0]]) == 0 || len(r[q[1]]) == 0 || r[q[1]][0] == 0 {
				row = append(row, "–")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f×", r[q[0]][0]/r[q[1]][0]))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
	fmt.Println()
	for _, line := range accessTargets(results, "fungi-tcp") {
		fmt.Println(line)
	}
	fmt.Println()
}

// accessTarget is one of issue 23's targets for the access path through
// two daemons: the measure's p50 (or MB/s) for path against ssh -L's.
type accessTarget struct {
	measure, unit string
	words         string
	// met says whether v (the path's figure) against ssh (ssh -L's)
	// meets the target.
	met func(v, ssh float64) bool
}

var accessTargetList = []accessTarget{
	{"new connection + first round trip p50", "µs", "≤ 500 µs and below ssh -L", func(v, ssh float64) bool { return v <= 500 && v < ssh }},
	{"kept connection, round trip p50", "µs", "≤ 0.8× ssh -L", func(v, ssh float64) bool { return v <= 0.8*ssh }},
	{"one stream", "MB/s", "≥ 1.3× ssh -L", func(v, ssh float64) bool { return v >= 1.3*ssh }},
	{"8 streams", "MB/s", "≥ 1.6× ssh -L", func(v, ssh float64) bool { return v >= 1.6*ssh }},
}

// accessTargets says, for each target, the path's figure, its ratio to
// ssh -L in the same run and whether the target is met: the figure that
// counts, read off the table without arithmetic. Where the bare relay ran,
// its ratio follows: how far the machine lets any forwarder go. Measures
// the run skipped are left out.
func accessTargets(results map[string]map[string][]float64, path string) []string {
	lines := []string{fmt.Sprintf("targets, %s:", path)}
	for _, tg := range accessTargetList {
		v, ssh := results[tg.measure][path], results[tg.measure]["ssh-L"]
		if len(v) == 0 || len(ssh) == 0 || ssh[0] == 0 {
			continue
		}
		verdict := "not met"
		if tg.met(v[0], ssh[0]) {
			verdict = "met"
		}
		line := fmt.Sprintf("- %s %s: %.*f %s, %.2f× ssh -L: %s", tg.measure, tg.words, precision(v[0]), v[0], tg.unit, v[0]/ssh[0], verdict)
		if floor := results[tg.measure]["relay"]; len(floor) > 0 {
			line += fmt.Sprintf(" (the bare relay: %.2f× ssh -L)", floor[0]/ssh[0])
		}
		lines = append(lines, line)
	}
	if len(lines) == 1 {
		return nil
	}
	return lines
}

// benchCounts are how much each measure does.
type benchCounts struct {
	kept, fresh int // round trips on one connection; new connections
	warm        int // new connections, not measured, after the fresh daemons' first
	streamBytes int // bytes per throughput run, split over the streams
	rounds      int // throughput runs; the median is reported
}

// benchMeasure is one row of the table: run measures every path and
// returns the figures by path name.
type benchMeasure struct {
	name string
	unit string
	run  func(ps []benchPath) map[string][]float64
}

// benchPath is one way to the echo server and the sink; pids are the
// processes that forward its connections.
type benchPath struct {
	name, echo, sink string
	pids             []int
}

// attachedPair starts two quiet daemons listening on listen, has B trust
// A, exposes echo and sink on B and attaches both on A; it returns A's
// local addresses for them and the daemons' process IDs.
func attachedPair(t *testing.T, fungi, name, listen, echo, sink string) (string, string, []int) {
	a, b := benchDaemon(t, fungi, name+"-a", listen), benchDaemon(t, fungi, name+"-b", listen)
	aID, _ := a.nodeInfo()
	bID, bAddr := b.nodeInfo()
	a.cli("device", "add", bID, "--alias", "node-b", "--addr", bAddr)
	b.cli("device", "trust", aID, "--role", "admin")
	local := map[string]string{}
	for svc, addr := range map[string]string{"echo": echo, "sink": sink} {
		_, port, _ := net.SplitHostPort(addr)
		b.cli("service", "expose", svc, "--port", port, "--usage", "tcp")
		a.cli("access", "attach", svc, "--peer", "node-b")
		local[svc] = "127.0.0.1:" + a.accessPort(svc)
	}
	if err := testutil.Poll(30*time.Second, func() error { return testutil.EchoOnce(local["echo"], 5*time.Second) }); err != nil {
		a.fatalf("%s: no echo through the access entry: %v", name, err)
	}
	return local["echo"], local["sink"], []int{a.daemon.Process.Pid, b.daemon.Process.Pid}
}

// benchDaemon is quietDrill with the daemon listening on listen, and a CPU
// profile when FUNGI_BENCH_CPUPROFILE names a folder.
func benchDaemon(t *testing.T, fungi, name, listen string) *drill {
	h := newQuietHome(t, name)
	d := &drill{t: t, fungi: fungi, home: h, logDir: t.TempDir(), ports: map[string]int{}, runs: 1}
	t.Cleanup(d.shutdown)
	logFile, err := os.Create(filepath.Join(d.logDir, "daemon-01.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fungi, "-f", h.Dir, "daemon", "--listen", listen)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	if dir := os.Getenv("FUNGI_BENCH_CPUPROFILE"); dir != "" {
		cmd.Env = append(cmd.Env, "FUNGI_CPUPROFILE="+filepath.Join(dir, name+".pprof"))
	}
	if env := os.Getenv("FUNGI_BENCH_DAEMON_ENV"); env != "" {
		cmd.Env = append(cmd.Env, strings.Fields(env)...)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.daemon, d.waited = cmd, make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(d.waited) }()
	d.nodeInfo() // it answers
	return d
}

// sshForward forwards to echo and sink with `ssh -L` (aes128-gcm) through a
// private sshd on loopback; it returns the forwarded addresses and the
// process IDs of ssh and sshd; ok is false without sshd.
func sshForward(t *testing.T, echo, sink string) (e, s string, pids []int, ok bool) {
	srv, ok := testutil.StartSSHD(t)
	if !ok {
		return "", "", nil, false
	}
	echoPort, sinkPort := testutil.FreePort(t), testutil.FreePort(t)
	ssh := exec.Command("ssh", append(srv.Args(),
		"-N", "-p", strconv.Itoa(srv.Port), "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", echoPort, echo),
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", sinkPort, sink),
		"root@127.0.0.1")...)
	ssh.Stderr = os.Stderr
	if err := ssh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Process.Kill(); ssh.Wait() })
	e, s = fmt.Sprintf("127.0.0.1:%d", echoPort), fmt.Sprintf("127.0.0.1:%d", sinkPort)
	if err := testutil.Poll(10*time.Second, func() error { return testutil.EchoOnce(e, 5*time.Second) }); err != nil {
		t.Fatalf("ssh -L does not forward: %v", err)
	}
	return e, s, []int{ssh.Process.Pid, srv.PID}, true
}

// bareRelay forwards to echo and sink through two processes of
// testdata/relay (built here with the C compiler), chained over loopback
// TCP as a pair of daemons is: a thread per direction doing a blocking
// read and a write, no poll, no encryption, no framing. It is the floor:
// what any two-process forwarder pays on this machine, which a target
// against ssh -L is read against. ok is false without a C compiler.
func bareRelay(t *testing.T, echo, sink string) (e, s string, pids []int, ok bool) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Log("no C compiler: apt-get install gcc to measure the bare relay's floor")
		return "", "", nil, false
	}
	relay := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command(cc, "-O2", "-pthread", "-o", relay, filepath.Join("testdata", "relay", "relay.c")).CombinedOutput(); err != nil {
		t.Fatalf("building the bare relay: %v\n%s", err, out)
	}
	hop := func(to string) string {
		host, port, _ := net.SplitHostPort(to)
		listen := testutil.FreePort(t)
		cmd := exec.Command(relay, strconv.Itoa(listen), host, port)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
		return fmt.Sprintf("127.0.0.1:%d", listen)
	}
	e, s = hop(hop(echo)), hop(hop(sink))
	if err := testutil.Poll(10*time.Second, func() error { return testutil.EchoOnce(e, 5*time.Second) }); err != nil {
		t.Fatalf("the bare relay does not forward: %v", err)
	}
	return e, s, pids, true
}

// spent is what a path's forwarders have used: CPU time, thread switches
// and minor page faults (a page the process touches for the first time).
type spent struct {
	cpu      time.Duration
	switches int
	faults   int
}

// spentBy is what the processes of p and all their descendants (sshd
// serves a session in a child of its own) have used so far, from one walk
// of /proc. The CPU time is the scheduler's own count in nanoseconds
// (/proc/PID/task/TID/schedstat): utime and stime in /proc/PID/stat are
// sampled at the clock tick, which on a tickless machine lands on whoever
// wakes a sleeping CPU, so a path of short wake-ups is charged far more
// than it ran; they stand in only where schedstat is unreadable. Each
// thread switch (testutil.ThreadSwitches) is a wake-up paid on the path.
func spentBy(p benchPath) spent {
	var s spent
	for pid, pr := range inTree(p.pids) {
		ran, ok := threadsRan(pid)
		if !ok {
			ran = pr.cpu
		}
		n, _ := testutil.ThreadSwitches(pid) // 0 for one that just ended
		s.cpu, s.switches, s.faults = s.cpu+ran, s.switches+n, s.faults+pr.faults
	}
	return s
}

// spentBefore is spentBy for every path, by name: the start of a measure.
func spentBefore(ps []benchPath) map[string]spent {
	out := map[string]spent{}
	for _, p := range ps {
		out[p.name] = spentBy(p)
	}
	return out
}

func (s spent) less(o spent) spent {
	return spent{s.cpu - o.cpu, s.switches - o.switches, s.faults - o.faults}
}

// cpuEach is the CPU per one of n, in unit.
func (s spent) cpuEach(n int, unit time.Duration) float64 {
	return float64(s.cpu) / float64(unit) / float64(n)
}

func (s spent) switchesEach(n int) float64 { return float64(s.switches) / float64(n) }

func (s spent) faultsEach(n int) float64 { return float64(s.faults) / float64(n) }

// threadsRan sums the time the live threads of pid have run.
func threadsRan(pid int) (time.Duration, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var total time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat"))
		if err != nil {
			return 0, false
		}
		ns, err := strconv.ParseInt(strings.Fields(string(data) + " x")[0], 10, 64)
		if err != nil {
			return 0, false
		}
		total += time.Duration(ns)
	}
	return total, true
}

// proc is what /proc/PID/stat says of a process.
type proc struct {
	ppid   int
	cpu    time.Duration
	faults int // minor page faults
}

// inTree is every process that is one of pids or descends from one, by
// PID.
func inTree(pids []int) map[int]proc {
	procs := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis: state,
		// ppid, ..., minflt (8th), utime (12th) and stime (13th), in
		// clock ticks.
		_, rest, ok := strings.Cut(string(data), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		minflt, _ := strconv.Atoi(f[7])
		procs[pid] = proc{ppid: ppid, cpu: time.Duration(utime+stime) * (time.Second / clockTicks), faults: minflt}
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	tree := map[int]proc{}
	for pid, p := range procs {
		for up, hops := pid, 0; up > 1 && hops < 64; up, hops = procs[up].ppid, hops+1 {
			if in[up] {
				tree[pid] = p
				break
			}
		}
	}
	return tree
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// turnOrder returns the orders of n paths for one round after another:
// shuffled with a fixed seed, so runs are alike and, over the rounds,
// every path follows every other about as often.
func turnOrder(n int) func() []int {
	rng := rand.New(rand.NewPCG(1, 2))
	return func() []int { return rng.Perm(n) }
}

// benchTurn is how many samples a latency measure takes on one path before
// it moves on to the next; the first of them is not kept.
const benchTurn = 11

// inTurns takes n kept samples of every path, benchTurn-1 of them on a
// path at a time behind one it drops, and returns them by path. Each
// round of turns takes the paths in an order of its own (turnOrder), so
// no path always follows the same one: a path's daemons keep working a
// while after its turn (warm streams, teardown, the collector), and in a
// fixed order, even one started one path further each round, the path
// behind them always paid for it (one build measured 7–10% slower than
// the same build one place earlier).
func inTurns(ps []benchPath, n int, sample func(i int) time.Duration) [][]time.Duration {
	lat := make([][]time.Duration, len(ps))
	order := turnOrder(len(ps))
	for done := 0; done < n; done += benchTurn - 1 {
		for _, i := range order() {
			sample(i) // after the path before: not kept
			for range min(benchTurn-1, n-done) {
				lat[i] = append(lat[i], sample(i))
			}
		}
	}
	return lat
}

// keptRoundTrips times n round trips of 64 bytes on one connection per
// path, the paths in turns; it returns p50 and p90.
func keptRoundTrips(t *testing.T, ps []benchPath, n int) map[string][]float64 {
	conns := make([]net.Conn, len(ps))
	for i, p := range ps {
		c, err := net.DialTimeout("tcp", p.echo, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		conns[i] = c
	}
	msg, back := make([]byte, 64), make([]byte, 64)
	return byPath(ps, inTurns(ps, n, func(i int) time.Duration {
		t0 := time.Now()
		if _, err := conns[i].Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conns[i], back); err != nil {
			t.Fatalf("round trip through %s: %v", ps[i].name, err)
		}
		return time.Since(t0)
	}))
}

// newConnections times n new connections on every path, each with its
// first round trip, the paths in turns; it returns p50 and p90.
func newConnections(t *testing.T, ps []benchPath, n int) map[string][]float64 {
	return byPath(ps, inTurns(ps, n, func(i int) time.Duration {
		t0 := time.Now()
		if err := testutil.EchoOnce(ps[i].echo, 5*time.Second); err != nil {
			t.Fatalf("new connection through %s: %v", ps[i].name, err)
		}
		return time.Since(t0)
	}))
}

// newConnectionBlocks makes blocks runs of n new connections on every
// path, one after the other on the same daemons, and prints each run's
// p50 and CPU per connection by path: whether the first connections of a
// daemon cost more than later ones, and on which path.
func newConnectionBlocks(t *testing.T, ps []benchPath, n, blocks int) {
	for b := range blocks {
		before := spentBefore(ps)
		p50 := newConnections(t, ps, n)
		var line []string
		for _, p := range ps[1:] {
			used := spentBy(p).less(before[p.name])
			line = append(line, fmt.Sprintf("%s %.0f µs, CPU %.0f µs, %.1f switches, %.2f page faults", p.name, p50[p.name][0],
				used.cpuEach(n, time.Microsecond), used.switchesEach(n), used.faultsEach(n)))
		}
		fmt.Printf("new connections %d–%d: %s\n", b*n+1, (b+1)*n, strings.Join(line, "; "))
	}
}

// byPath is the p50 and p90 of each path's latencies.
func byPath(ps []benchPath, lat [][]time.Duration) map[string][]float64 {
	out := map[string][]float64{}
	for i, p := range ps {
		out[p.name] = percentiles(lat[i])
	}
	return out
}

// percentiles are the p50 and p90 in µs.
func percentiles(lat []time.Duration) []float64 {
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1000 }
	return []float64{at(0.5), at(0.9)}
}

// throughputs pushes n.streamBytes to each path's sink over streams
// connections at once, n.rounds times, the paths in turns within each
// round (a machine's slow minute then costs every path alike); it returns
// each path's median in MB/s.
func throughputs(t *testing.T, ps []benchPath, streams int, n benchCounts) map[string][]float64 {
	rates := make([][]float64, len(ps))
	order := turnOrder(len(ps))
	for range n.rounds {
		for _, i := range order() {
			rates[i] = append(rates[i], throughput(t, ps[i].sink, streams, n.streamBytes))
		}
	}
	out := map[string][]float64{}
	for i, p := range ps {
		slices.Sort(rates[i])
		out[p.name] = []float64{rates[i][len(rates[i])/2]}
	}
	return out
}

// throughput pushes bytes to the sink at addr over streams connections at
// once and is the rate in MB/s.
func throughput(t *testing.T, addr string, streams, bytes int) float64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- testutil.SendToSink(addr, bytes/streams) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("%d streams to %s: %v", streams, addr, err)
		}
	}
	return float64(bytes) / time.Since(t0).Seconds() / 1e6
}

// precision is how many decimals a figure in the table gets: one below 10
// (a count of wake-ups per round trip), none above.
func precision(v float64) int {
	if v < 10 {
		return 1
	}
	return 0
}

func TestAccessTargetsSayWhichAreMet(t *testing.T) {
	results := map[string]map[string][]float64{
		"new connection + first round trip p50": {"fungi-tcp": {554, 755}, "ssh-L": {627, 817}},
		"kept connection, round trip p50":       {"fungi-tcp": {120, 150}, "ssh-L": {160, 200}, "relay": {136, 170}},
		"one stream":                            {"fungi-tcp": {697}, "ssh-L": {439}},
		"8 streams":                             {"fungi-tcp": {600}, "ssh-L": {400}},
	}
	want := []string{
		"targets, fungi-tcp:",
		"- new connection + first round trip p50 ≤ 500 µs and below ssh -L: 554 µs, 0.88× ssh -L: not met",
		"- kept connection, round trip p50 ≤ 0.8× ssh -L: 120 µs, 0.75× ssh -L: met (the bare relay: 0.85× ssh -L)",
		"- one stream ≥ 1.3× ssh -L: 697 MB/s, 1.59× ssh -L: met",
		"- 8 streams ≥ 1.6× ssh -L: 600 MB/s, 1.50× ssh -L: not met",
	}
	if got := accessTargets(results, "fungi-tcp"); !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Below ssh -L but over 0.5 ms, and under 0.5 ms but not below ssh -L:
	// both halves count.
	for _, c := range []struct{ fungi, ssh float64 }{{520, 600}, {480, 470}} {
		r := map[string]map[string][]float64{"new connection + first round trip p50": {"fungi-tcp": {c.fungi}, "ssh-L": {c.ssh}}}
		if got := accessTargets(r, "fungi-tcp"); len(got) != 2 || !strings.HasSuffix(got[1], "not met") {
			t.Errorf("%v µs against %v µs: %q, want not met", c.fungi, c.ssh, got)
		}
	}
	if got := accessTargets(map[string]map[string][]float64{}, "fungi-tcp"); got != nil {
		t.Errorf("a run that measured nothing printed %q", got)
	}
}
