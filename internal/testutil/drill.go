package testutil

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvCount is the number in the environment variable name, or def when it
// is unset: drills and measurements run small in `make test` and take their
// full size from the environment, without an edit. A value that is not a
// whole number from 1 to max fails the test.
func EnvCount(tb testing.TB, name string, def, max int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		tb.Fatalf("%s=%q: want a number from 1 to %d", name, v, max)
	}
	return n
}

// Parallel runs do(0) … do(n-1) at once and waits for all of them. It
// returns nil when none failed, else how many did and the first error.
func Parallel(n int, do func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = do(i) }()
	}
	wg.Wait()
	failed, first := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d failed; first: %w", failed, n, first)
	}
	return nil
}

// DrillService serves HTTP on a free loopback port until the test ends,
// for load drills through an access entry, and returns its address.
// /warm answers at once. /hold answers "held" only when holds requests to
// it have arrived, so the entry is seen to carry them all at the same
// time (it gives up with a 504 after a minute). /upload answers the hex
// SHA-256 of the body (at most 2 MiB).
func DrillService(tb testing.TB, holds int) string {
	tb.Helper()
	var arrived sync.WaitGroup
	arrived.Add(holds)
	allIn := make(chan struct{})
	go func() { arrived.Wait(); close(allIn) }()
	mux := http.NewServeMux()
	mux.HandleFunc("/warm", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "warm") })
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		select {
		case <-allIn:
			io.WriteString(w, "held")
		case <-time.After(time.Minute):
			http.Error(w, "not every connection arrived", http.StatusGatewayTimeout)
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, io.LimitReader(r.Body, 2<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// DrillRequest makes one HTTP request to the listener at entry on a
// connection of its own (no pooling: each request is one more connection
// through the entry) and returns the body of a 200 answer.
func DrillRequest(entry, method, path string, body []byte) (string, error) {
	c, err := net.DialTimeout("tcp", entry, 30*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	req, _ := http.NewRequest(method, "http://drill"+path, bytes.NewReader(body))
	req.Close = true
	if err := req.Write(c); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("answer body: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", res.Status, b)
	}
	return string(b), nil
}

// CPUModel is the machine's CPU as /proc/cpuinfo names it, so measured
// figures carry the machine they were measured on.
func CPUModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "an unknown CPU"
}

// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures, or "unknown": the
// machine may be shared, and figures measured under load should say so.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// ThreadSwitches is how many times the live threads of process pid were
// switched out, by their own wait or by the kernel (/proc's voluntary and
// involuntary ctxt_switches): each is a wake-up the process paid. It fails
// where /proc has no such process (not Linux, or it ended).
func ThreadSwitches(pid int) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, task := range tasks {
		data, err := os.ReadFile(dir + "/" + task.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(data), "\n") {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				total += n
			}
		}
	}
	return total, nil
}
