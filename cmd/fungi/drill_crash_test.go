package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// The crash drill: a real `fungi daemon` is killed with SIGKILL, round after
// round, while clients upload files through three wasm services running the
// example app and service commands go to the daemon at the same time. After
// every restart each service whose desired state is running is back on its
// host port, every upload that was acknowledged (a 2xx to its PUT) reads
// back byte for byte, every file fungi keeps still decodes, and no temporary
// file of an interrupted write is left in the home.
//
// FUNGI_DRILL_ROUNDS sets the number of kills (default 3; `make drill` runs
// more).

// drillServices run the example app. The last one is also stopped and
// started by the command client during the rounds.
var drillServices = []string{"drill-a", "drill-b", "drill-c"}

const drillToggled = "drill-c"

// drillManifest is the example wasm manifest under another name.
const drillManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: %[1]s}
spec:
  runtime: wasmtime
  expose: {enabled: true, serviceId: %[1]s, transport: {kind: tcp}, usage: {kind: web, path: /}}
  source: {file: %[2]s}
  ports: [{name: http, hostPort: auto}]
  mounts: [{hostPath: "${APP_HOME}/data", runtimePath: /data}]
  env: {FILEBROWSER_ROOT: /data}
  restart: on-failure
`

// upload is one PUT: where it went and what it carried.
type upload struct {
	service string
	path    string
	size    int
	sum     [32]byte
}

// drill is the state of one run: the home, the daemon of the moment and
// what clients were told.
type drill struct {
	t      *testing.T
	fungi  string
	home   *home.Home
	logDir string
	ports  map[string]int

	mu      sync.Mutex
	acked   []upload
	tried   map[string]upload // path → every upload sent, acknowledged or not
	desired map[string]string // service → desired state a command got acknowledged
	unsure  map[string]bool   // a command to it was cut by the kill: either state is right

	daemon *exec.Cmd
	waited chan struct{}
	runs   int
	// crashTemps are the temporary files the last kill left; the restarted
	// daemon must clear them.
	crashTemps       []string
	tempsLeftByKills int
}

func TestCrashDrill(t *testing.T) {
	rounds := testutil.EnvCount(t, "FUNGI_DRILL_ROUNDS", 3, 1000)
	fungi, err := exec.LookPath("fungi") // the test binary as fungi, put on PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	wasm := testutil.BuildWasm(t, "examples/apps/filebrowser-lite")
	h, err := home.Open(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatal(err)
	}
	if err := quietHome(h.Dir); err != nil {
		t.Fatal(err)
	}
	d := &drill{t: t, fungi: fungi, home: h, logDir: t.TempDir(), ports: map[string]int{},
		tried: map[string]upload{}, desired: map[string]string{}, unsure: map[string]bool{}}
	t.Cleanup(d.shutdown)

	d.startDaemon()
	manifests := t.TempDir()
	for _, name := range drillServices {
		file := filepath.Join(manifests, name+".service.yaml")
		if err := os.WriteFile(file, []byte(fmt.Sprintf(drillManifest, name, wasm)), 0o644); err != nil {
			t.Fatal(err)
		}
		d.cli("service", "pull", file)
		d.cli("service", "start", name)
		info := d.inspect(name)
		d.ports[name] = int(info.Ports[0].HostPort)
		d.desired[name] = "running"
	}

	for round := 1; round <= rounds; round++ {
		d.round(round)
		d.checkAfterRestart(round)
	}
	d.mu.Lock()
	acked, tried := len(d.acked), len(d.tried)
	d.mu.Unlock()
	t.Logf("%d rounds: %d uploads acknowledged and read back after every kill, of %d sent; %d cut by a kill left a partial file; the kills left %d temporary files, all cleared", rounds, acked, tried, d.partialUploads(), d.tempsLeftByKills)
}

// round puts the daemon under load and kills it at a point chosen at random:
// after some number of acknowledged uploads, with commands in flight.
func (d *drill) round(round int) {
	rng := mathrand.New(mathrand.NewSource(int64(round)))
	d.mu.Lock()
	// Now and then right away, while the services are being brought back.
	killAfter := len(d.acked) + rng.Intn(24)
	d.mu.Unlock()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, name := range drillServices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.uploadLoop(stop, round, w, name)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.commandLoop(stop, rng.Int63())
	}()

	err := testutil.Poll(2*time.Minute, func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.acked) < killAfter {
			return fmt.Errorf("%d uploads acknowledged, the kill comes at %d", len(d.acked), killAfter)
		}
		return nil
	})
	if err != nil {
		close(stop)
		wg.Wait()
		d.fatalf("round %d: the load did not get going: %v", round, err)
	}
	if err := d.daemon.Process.Kill(); err != nil {
		d.fatalf("round %d: SIGKILL: %v", round, err)
	}
	<-d.waited
	close(stop)
	wg.Wait()
	d.crashTemps = d.findTemps()
	d.tempsLeftByKills += len(d.crashTemps)
	d.startDaemon()
}

// uploadLoop PUTs files of random size and content to one service until
// stop, each to a new path, so no later upload can touch an acknowledged one.
func (d *drill) uploadLoop(stop <-chan struct{}, round, worker int, service string) {
	client := &http.Client{Timeout: 20 * time.Second}
	pause := time.NewTicker(50 * time.Millisecond)
	defer pause.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		path := fmt.Sprintf("r%03d/w%d-%05d.bin", round, worker, seq)
		rng := mathrand.New(mathrand.NewSource(int64(round)<<32 | int64(worker)<<20 | int64(seq)))
		body := make([]byte, 1+rng.Intn(96<<10))
		rng.Read(body)
		up := upload{service: service, path: path, size: len(body), sum: sha256.Sum256(body)}
		d.mu.Lock()
		d.tried[service+"/"+path] = up
		port := d.ports[service]
		d.mu.Unlock()
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/files/%s", port, path), strings.NewReader(string(body)))
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				d.mu.Lock()
				d.acked = append(d.acked, up)
				d.mu.Unlock()
				continue
			}
		}
		// The daemon is down, or the service stopped: try again shortly.
		select {
		case <-stop:
			return
		case <-pause.C:
		}
	}
}

// commandLoop sends service commands while the uploads run: inspect and
// list of every service, and stop and start of one, noting each desired
// state the daemon acknowledged.
func (d *drill) commandLoop(stop <-chan struct{}, seed int64) {
	rng := mathrand.New(mathrand.NewSource(seed))
	pause := time.NewTicker(20 * time.Millisecond)
	defer pause.Stop()
	for {
		select {
		case <-stop:
			return
		case <-pause.C:
		}
		c, err := (&env{home: d.home, stdout: io.Discard, stderr: io.Discard}).connect()
		if err != nil {
			continue // killed, or not up yet
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		switch rng.Intn(4) {
		case 0:
			c.List(ctx, &messages.ListServicesRequest{})
		case 1:
			c.Inspect(ctx, &messages.InspectService{Name: drillServices[rng.Intn(len(drillServices))]})
		default:
			want := "running"
			if rng.Intn(2) == 0 {
				want = "stopped"
			}
			d.mu.Lock()
			d.unsure[drillToggled] = true
			d.mu.Unlock()
			var err error
			if want == "running" {
				_, err = c.Start(ctx, &messages.StartService{Name: drillToggled})
			} else {
				_, err = c.Stop(ctx, &messages.StopService{Name: drillToggled})
			}
			if err == nil {
				d.mu.Lock()
				d.desired[drillToggled] = want
				d.unsure[drillToggled] = false
				d.mu.Unlock()
			}
		}
		cancel()
		c.Close()
	}
}

// checkAfterRestart checks the node the new daemon brought back.
func (d *drill) checkAfterRestart(round int) {
	d.checkFilesWhole(round)
	for _, name := range drillServices {
		d.mu.Lock()
		want, unsure := d.desired[name], d.unsure[name]
		d.mu.Unlock()
		var info *messages.ServiceInfo
		d.poll(round, name+" back in its desired state", func(c *daemonClient) error {
			i, err := c.Inspect(context.Background(), &messages.InspectService{Name: name})
			if err != nil {
				return err
			}
			info = i
			stoppedNow := i.State == "stopped"
			switch {
			case unsure && (i.State == "running" || stoppedNow),
				want == "running" && i.State == "running",
				want == "stopped" && stoppedNow:
				return nil
			}
			return fmt.Errorf("state %s, desired %s (last acknowledged command: %s; cut by the kill: %v), last error %q", i.State, i.DesiredState, want, unsure, i.LastError)
		})
		if info.State != "running" {
			// Started again so its uploads can be read back.
			d.cli("service", "start", name)
			d.mu.Lock()
			d.desired[name], d.unsure[name] = "running", false
			d.mu.Unlock()
		}
		if got := d.inspect(name).Ports[0].HostPort; int(got) != d.ports[name] {
			d.fatalf("round %d: %s came back on port %d, it had %d", round, name, got, d.ports[name])
		}
		d.checkServes(round, name)
	}
	d.readBack(round)
	d.checkNoTemps(round)
}

// partialUploads counts uploads cut by a kill that left a file of another
// size: the example app writes in place, so these are expected and only
// reported; an acknowledged upload is never among them.
func (d *drill) partialUploads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	acked := map[string]bool{}
	for _, up := range d.acked {
		acked[up.service+"/"+up.path] = true
	}
	n := 0
	for key, up := range d.tried {
		if acked[key] {
			continue
		}
		info, err := os.Stat(filepath.Join(d.home.DataDir(up.service), "data", filepath.FromSlash(up.path)))
		if err == nil && info.Size() != int64(up.size) {
			n++
		}
	}
	return n
}

// checkServes asks the service for its front page on its host port.
func (d *drill) checkServes(round int, name string) {
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", d.ports[name]))
	if err != nil {
		d.fatalf("round %d: %s does not serve on its port: %v", round, name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.fatalf("round %d: %s answers %s on its port", round, name, resp.Status)
	}
}

// readBack GETs every upload ever acknowledged and compares it.
func (d *drill) readBack(round int) {
	d.mu.Lock()
	acked := append([]upload(nil), d.acked...)
	d.mu.Unlock()
	client := &http.Client{Timeout: 20 * time.Second}
	for _, up := range acked {
		url := fmt.Sprintf("http://127.0.0.1:%d/files/%s", d.ports[up.service], up.path)
		resp, err := client.Get(url)
		if err != nil {
			d.fatalf("round %d: read back %s: %v", round, url, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			d.fatalf("round %d: read back %s/%s: %s %v", round, up.service, up.path, resp.Status, err)
		}
		if int(n) != up.size || [32]byte(h.Sum(nil)) != up.sum {
			d.fatalf("round %d: the acknowledged upload %s/%s is torn: %d bytes back of %d, or other content", round, up.service, up.path, n, up.size)
		}
	}
}

// checkFilesWhole decodes every file fungi keeps about services and peers,
// as the next daemon does: none may be torn.
func (d *drill) checkFilesWhole(round int) {
	for _, name := range drillServices {
		dir := d.home.ServiceDir(name)
		data, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil {
			d.fatalf("round %d: %v", round, err)
		}
		var rec struct {
			Name  string            `json:"name"`
			Ports []json.RawMessage `json:"ports"`
		}
		if err := json.Unmarshal(data, &rec); err != nil || rec.Name != name || len(rec.Ports) != 1 {
			d.fatalf("round %d: %s/state.json is torn (%v): %q", round, name, err, data)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "manifest.yaml"))
		if err == nil {
			_, err = manifest.Parse(raw)
		}
		if err != nil {
			d.fatalf("round %d: %s/manifest.yaml: %v", round, name, err)
		}
	}
	for _, f := range []string{"devices.json", "access.json"} {
		data, err := os.ReadFile(filepath.Join(d.home.Dir, f))
		if err == nil && !json.Valid(data) {
			d.fatalf("round %d: %s is torn: %q", round, f, data)
		}
	}
}

// findTemps lists the temporary files of atomic writes anywhere in the home.
func (d *drill) findTemps() []string {
	var found []string
	filepath.WalkDir(d.home.Dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && atomicfile.IsTemp(e.Name()) {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// checkNoTemps fails on a temporary file the kill left (one there between
// the kill and the restart) that the new daemon did not clear away. A new
// one may be a write of the new daemon under way, and is not counted.
func (d *drill) checkNoTemps(round int) {
	var left []string
	for _, path := range d.crashTemps {
		if _, err := os.Stat(path); err == nil {
			left = append(left, path)
		}
	}
	if len(left) > 0 {
		d.fatalf("round %d: the kill left temporary files of interrupted writes, and the restarted daemon kept them: %v", round, left)
	}
}

// startDaemon runs a new `fungi daemon` on the home and waits until it
// answers.
func (d *drill) startDaemon() {
	d.runs++
	logFile, err := os.Create(filepath.Join(d.logDir, fmt.Sprintf("daemon-%02d.log", d.runs)))
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(d.fungi, "-f", d.home.Dir, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.daemon, d.waited = cmd, make(chan struct{})
	waited := d.waited
	go func() {
		cmd.Wait()
		logFile.Close()
		close(waited)
	}()
	d.poll(0, "the daemon to answer", func(c *daemonClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.Info(ctx, &messages.InfoRequest{})
		return err
	})
}

// shutdown stops the last daemon as a user would, and kills it if it does
// not stop.
func (d *drill) shutdown() {
	if d.daemon == nil {
		return
	}
	d.daemon.Process.Signal(os.Interrupt)
	select {
	case <-d.waited:
	case <-time.After(30 * time.Second):
		d.daemon.Process.Kill()
		<-d.waited
	}
}

// poll waits until check passes with a client of the current daemon.
func (d *drill) poll(round int, what string, check func(*daemonClient) error) {
	err := testutil.Poll(90*time.Second, func() error {
		c, err := (&env{home: d.home, stdout: io.Discard, stderr: io.Discard}).connect()
		if err != nil {
			return err
		}
		defer c.Close()
		return check(c)
	})
	if err != nil {
		d.fatalf("round %d: waiting for %s: %v", round, what, err)
	}
}

func (d *drill) inspect(name string) *messages.ServiceInfo {
	var info *messages.ServiceInfo
	d.poll(0, "inspect "+name, func(c *daemonClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		info, err = c.Inspect(ctx, &messages.InspectService{Name: name})
		return err
	})
	return info
}

// cli runs a fungi command on the drill's home and fails on an error.
func (d *drill) cli(args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.fungi, append([]string{"-f", d.home.Dir}, args...)...).CombinedOutput()
	if err != nil {
		d.fatalf("fungi %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fatalf fails the drill with the end of the current daemon's log.
func (d *drill) fatalf(format string, args ...any) {
	d.t.Helper()
	log, _ := os.ReadFile(filepath.Join(d.logDir, fmt.Sprintf("daemon-%02d.log", d.runs)))
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	d.t.Fatalf("%s\nlog of daemon run %d:\n%s", fmt.Sprintf(format, args...), d.runs, log)
}
