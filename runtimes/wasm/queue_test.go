package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/wasmasm"
)

// spinThenOKModule is a tiny WAGI module: _start counts to spins (a
// couple of milliseconds for a few million), then writes a header block
// and "ok" to stdout with one fd_write.
func spinThenOKModule(spins int32) []byte {
	const text = "Content-Type: text/plain\n\nok"
	iovec := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 16), uint32(len(text)))
	body := wasmasm.Cat(
		[]byte{0x01, 0x01, 0x7f}, // one i32 local, the counter
		// loop: counter += 1; continue while counter < spins
		[]byte{0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00}, wasmasm.I32(spins), []byte{0x49, 0x0d, 0x00, 0x0b},
		// fd_write(1, iovec at 0, 1 iovec, written count at 8); drop the errno
		[]byte{0x41, 0x01, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1a, 0x0b},
	)
	return wasmasm.Cat(
		[]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
		// types: fd_write's (i32 i32 i32 i32) -> i32, and _start's () -> ()
		wasmasm.Section(1, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00),
		wasmasm.Section(2, wasmasm.Cat([]byte{0x01}, wasmasm.Str("wasi_snapshot_preview1"), wasmasm.Str("fd_write"), []byte{0x00, 0x00})...),
		wasmasm.Section(3, 0x01, 0x01),
		wasmasm.Section(5, 0x01, 0x00, 0x01),
		wasmasm.Section(7, wasmasm.Cat([]byte{0x02}, wasmasm.Str("_start"), []byte{0x00, 0x01}, wasmasm.Str("memory"), []byte{0x02, 0x00})...),
		wasmasm.Section(10, wasmasm.Cat([]byte{0x01, byte(len(body))}, body)...),
		wasmasm.Section(11, wasmasm.Cat([]byte{0x02, 0x00, 0x41, 0x00, 0x0b, byte(len(iovec))}, iovec,
			[]byte{0x00, 0x41, 0x10, 0x0b, byte(len(text))}, []byte(text))...),
	)
}

// TestBurstWaitsForSlots sends 1,000 requests at once to a module that
// takes about 2 ms and runs 16 at a time, each request on its own
// connection (128 at most open):
// the requests and connections over those limits wait their turn, and
// every one is answered 200.
func TestBurstWaitsForSlots(t *testing.T) {
	wasmPath := filepath.Join(t.TempDir(), "ok.wasm")
	if err := os.WriteFile(wasmPath, spinThenOKModule(200_000), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := startModule(t, DefaultConfig(""), wasmPath, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := g.base + "/"
	one := time.Now()
	if code, body, _ := get(t, url); code != 200 || body != "ok" {
		t.Fatalf("one request: %d %q", code, body)
	}
	t.Logf("one request took %s", time.Since(one))

	const burst = 1000
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	codes := make(map[int]int)
	failures := ""
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, what := 0, ""
			if resp, err := client.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				code, what = resp.StatusCode, string(b)
			} else {
				what = err.Error()
			}
			mu.Lock()
			codes[code]++
			if code != 200 && !strings.Contains(failures, what) && len(failures) < 2000 {
				failures += what + "; "
			}
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if codes[200] != burst {
		t.Fatalf("%d concurrent requests were answered %v (status: count; 0 is a failed request), want all 200; failures: %s", burst, codes, failures)
	}
}

// TestQueueOverflowAnswers503 fills a service's only slot and its queue
// of two: the next request is answered 503 with Retry-After at once, and
// the waiting two are served once the slot is free.
func TestQueueOverflowAnswers503(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MaxConcurrency = 1
	cfg.MaxQueued = 2
	cfg.QueueWait = time.Minute
	g := startGuest(t, cfg, nil)
	ctx, cancelSpin := context.WithCancel(context.Background())
	defer cancelSpin()
	spin := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/spin?ms=25000", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		spin <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "the slow request to hold the only slot", func() error {
		if !strings.Contains(g.log.String(), "spinning for 25000 ms") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	waited := make(chan int, 2)
	for range 2 {
		go func() {
			code := 0
			if resp, err := http.Get(g.base + "/echo"); err == nil {
				resp.Body.Close()
				code = resp.StatusCode
			}
			waited <- code
		}()
	}
	testutil.WaitFor(t, 10*time.Second, "two requests waiting for the slot", func() error {
		if n := g.p.queued.Load(); n != 2 {
			return fmt.Errorf("%d waiting", n)
		}
		return nil
	})
	resp, err := http.Get(g.base + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "2 more are waiting") {
		t.Fatalf("a request past the queue: %d Retry-After %q %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	cancelSpin() // the client leaves; its guest is stopped and the slot freed
	<-spin
	for range 2 {
		if code := <-waited; code != 200 {
			t.Errorf("a waiting request was answered %d once the slot was free, want 200", code)
		}
	}
}
