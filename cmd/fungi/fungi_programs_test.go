package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	mathrand "math/rand"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nsexec NETNS PROGRAM ARGS... runs PROGRAM in a network namespace by
// entering it and exec-ing, so PROGRAM is this very process and gets the
// script's signals itself (`ip netns exec` forks, and a SIGINT would stop
// only ip).
func nsexec() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: nsexec NETNS PROGRAM ARGS...")
		os.Exit(2)
	}
	runtime.LockOSThread()
	f, err := os.Open("/var/run/netns/" + os.Args[1])
	if err == nil {
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsexec:", err)
		os.Exit(1)
	}
	path, err := exec.LookPath(os.Args[2])
	if err == nil {
		err = syscall.Exec(path, os.Args[2:], os.Environ())
	}
	fmt.Fprintln(os.Stderr, "nsexec:", err)
	os.Exit(1)
}

// bulk put URL BYTES [MS_PER_MB] | bulk get URL moves BYTES of seeded
// pseudo-random data through an HTTP URL (PUT, optionally paced) or reads
// it back, and prints its SHA-256 and the rate, so a script can compare
// what went in with what came out.
func bulk() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bulk put URL BYTES [MS_PER_MB] | bulk get URL")
		os.Exit(2)
	}
	h := sha256.New()
	start := time.Now()
	var n int64
	switch os.Args[1] {
	case "put":
		size, _ := strconv.ParseInt(os.Args[3], 10, 64)
		pace := 0
		if len(os.Args) > 4 {
			pace, _ = strconv.Atoi(os.Args[4])
		}
		body := io.TeeReader(&pacedReader{r: io.LimitReader(mathrand.New(mathrand.NewSource(1)), size), msPerMB: pace}, h)
		req, _ := http.NewRequest(http.MethodPut, os.Args[2], body)
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bulk:", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			fmt.Fprintln(os.Stderr, "bulk: PUT answered", resp.Status)
			os.Exit(1)
		}
		n = size
	case "get":
		resp, err := http.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bulk:", err)
			os.Exit(1)
		}
		n, _ = io.Copy(h, resp.Body)
		resp.Body.Close()
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("sha256 %x\n", h.Sum(nil))
	fmt.Fprintf(os.Stderr, "%d bytes in %.3f s: %.1f MB/s\n", n, secs, float64(n)/secs/1e6)
	os.Exit(0)
}

// pacedReader spreads a body over time, msPerMB milliseconds per MiB: a
// token bucket that hands out one 64 KiB chunk per tick.
type pacedReader struct {
	r       io.Reader
	msPerMB int
	tick    *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	if p.msPerMB > 0 {
		if p.tick == nil {
			p.tick = time.NewTicker(time.Duration(p.msPerMB) * time.Millisecond / 16) // 16 chunks a MiB
		}
		<-p.tick.C
	}
	return p.r.Read(b)
}
