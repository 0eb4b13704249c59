package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/wasmasm"
)

// The hostile-component drill: a real `fungi daemon` with small wasm limits
// serves components assembled in this test to make the host hold memory on
// their behalf: one floods a fields with megabyte header values, one makes
// fields until its handles run out, one writes bodies it never sends. Clients
// send them requests, at most maxConcurrency at once, while hundreds of idle
// connections sit on the services. The daemon's RSS, sampled throughout, and
// its peak (VmHWM) stay under memoryLimitMB × maxConcurrency + 64 MiB; every
// hostile request answers 500 with the budget's trap in the service log; and
// afterwards the daemon answers `fungi status` and a well-behaved component
// still answers 200.
//
// FUNGI_DRILL_HOSTILE_REQUESTS sets how many hostile requests are sent
// (default 24; `make drill` sends more).

const (
	hostileMemoryLimitMB  = 32
	hostileMaxConcurrency = 4
	hostileIdleConns      = 200
)

var hostileGuests = map[string]wasmasm.Guest{
	// 1 MiB values: the budget traps after about 31 of the 4,096.
	"hostile-fields": {Flood: wasmasm.Fields, Count: 4096, ValueLen: 1 << 20, Pages: 18},
	// Handles: the budget traps at about 260,000 of the 1,000,000.
	"hostile-handles": {Flood: wasmasm.Handles, Count: 1_000_000, Pages: 2},
	// 64 bodies of 16 MiB each, buffered because no response is ever set.
	"hostile-bodies": {Flood: wasmasm.Bodies, Count: 64, Writes: 16, ValueLen: 1 << 20, Pages: 18},
}

const hostileManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: %s}
spec:
  runtime: wasmtime
  source: {file: %q}
  ports: [{name: http, hostPort: auto}]
  restart: never
`

func TestHostileComponentDrill(t *testing.T) {
	requests := testutil.EnvCount(t, "FUNGI_DRILL_HOSTILE_REQUESTS", 24, 100_000)
	fungi, err := exec.LookPath("fungi") // the test binary as fungi, put on PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	h, err := home.Open(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.MDNS, cfg.PortMapping, cfg.UI.Enabled = false, false, false
	cfg.Wasm.MemoryLimitMB, cfg.Wasm.MaxConcurrency = hostileMemoryLimitMB, hostileMaxConcurrency
	if err := writeHomeConfig(h.Dir, cfg); err != nil { // the DHT off too
		t.Fatal(err)
	}
	d := &drill{t: t, fungi: fungi, home: h, logDir: t.TempDir(), ports: map[string]int{}}
	t.Cleanup(d.shutdown)
	d.startDaemon()
	pid := d.daemon.Process.Pid

	guests := map[string]wasmasm.Guest{"hostile-ok": {Flood: wasmasm.Answer, Pages: 2}}
	var hostile []string
	for name, g := range hostileGuests {
		guests[name] = g
		hostile = append(hostile, name)
	}
	dir := t.TempDir()
	for name, g := range guests {
		wasm := filepath.Join(dir, name+".wasm")
		manifest := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(wasm, g.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(manifest, []byte(fmt.Sprintf(hostileManifest, name, wasm)), 0o644); err != nil {
			t.Fatal(err)
		}
		d.cli("service", "pull", manifest)
		d.cli("service", "start", name)
		d.ports[name] = int(d.inspect(name).Ports[0].HostPort)
	}
	url := func(name string) string { return fmt.Sprintf("http://127.0.0.1:%d/", d.ports[name]) }
	if code := get(t, url("hostile-ok")); code != http.StatusOK {
		d.fatalf("the well-behaved component answered %d before the drill; want 200", code)
	}
	baseline := procStatus(t, pid, "VmRSS")
	bound := int64(hostileMemoryLimitMB*hostileMaxConcurrency+64) << 20

	// RSS, sampled until the drill ends.
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := readProcStatus(pid, "VmRSS"); err == nil && rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	// Idle connections: half sent one request and keep the connection
	// alive, half never sent a byte. Either the server holds them, or (with
	// a cap on connections) refuses some; both are fine, a crash is not.
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	held := 0
	for i := 0; i < hostileIdleConns; i++ {
		name := hostile[i%len(hostile)]
		if i%2 == 0 {
			name = "hostile-ok"
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.ports[name]), 5*time.Second)
		if err != nil {
			continue
		}
		idle = append(idle, c)
		if i%2 == 0 {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: drill\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.SetDeadline(time.Time{})
		}
		held++
	}

	// Hostile requests, maxConcurrency at once, each service in turn.
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[string]map[int]int{}
	var wg sync.WaitGroup
	for w := 0; w < hostileMaxConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 60 * time.Second}
			for {
				i := next.Add(1) - 1
				if i >= int64(requests) {
					return
				}
				name := hostile[i%int64(len(hostile))]
				code := 0
				if resp, err := client.Get(url(name)); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				if codes[name] == nil {
					codes[name] = map[int]int{}
				}
				codes[name][code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	hwm := procStatus(t, pid, "VmHWM")
	t.Logf("%d hostile requests (%v), %d idle connections held: RSS %d MiB before, peak sampled %d MiB, VmHWM %d MiB; bound %d MiB",
		requests, codes, held, baseline>>20, peakRSS.Load()>>20, hwm>>20, bound>>20)
	if peakRSS.Load() > bound || hwm > bound {
		d.fatalf("the daemon's RSS reached %d MiB (VmHWM %d MiB), over memoryLimitMB × maxConcurrency + 64 MiB = %d MiB",
			peakRSS.Load()>>20, hwm>>20, bound>>20)
	}
	for _, name := range hostile {
		for code, n := range codes[name] {
			// 503: the service's slots were full (a request of the previous
			// worker had not yet given its slot back).
			if code != http.StatusInternalServerError && code != http.StatusServiceUnavailable {
				d.fatalf("%s answered %d to %d requests; a hostile request answers 500 (its trap) or 503 (slots full)", name, code, n)
			}
		}
		if codes[name][http.StatusInternalServerError] == 0 {
			d.fatalf("%s never answered 500: %v", name, codes[name])
		}
		logs := d.cli("service", "logs", name)
		want := fmt.Sprintf("the request handler trapped: the component kept more than %d MiB of host memory (fields, bodies, streams, handles): its memory limit is wasm.memoryLimitMB", hostileMemoryLimitMB/4)
		if !strings.Contains(logs, want) {
			d.fatalf("the log of %s does not name the budget's trap (%q):\n%s", name, want, tail(logs, 3000))
		}
	}
	if out := d.cli("status"); !strings.Contains(out, "running") {
		d.fatalf("fungi status after the drill:\n%s", out)
	}
	if code := get(t, url("hostile-ok")); code != http.StatusOK {
		d.fatalf("the well-behaved component answered %d after the drill; want 200", code)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	v, err := readProcStatus(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readProcStatus reads a "kB" field of /proc/PID/status, in bytes.
func readProcStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
