package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/fungi-go/fungi/internal/testutil"
)

// cmdRoam drives the roaming network of examples/nat-roam.sh:
//
//	roam up NS            builds it, and removes it when the script ends
//	roam move NS          moves home A's node to the third router; the
//	                      time of the move is kept for roam wait
//	roam back|moveb|backb NS  the other moves of nat-roam.sh (A back, B
//	                      to the fourth router and back), timed alike
//	roam wait NS URL SECS GETs URL from inside NS until it answers 200,
//	                      failing if that takes more than SECS seconds
//	                      after the move; prints how long it took
//
// Each GET gets at most 2 s, so one sent on a connection that died with
// the move does not hide a path that works again.
func cmdRoam(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: roam up|move|back|moveb|backb|wait NS ...")
	}
	script := filepath.Join(testutil.RepoRoot(), "examples/nat-roam.sh")
	ns := args[1]
	run := func(what string) {
		out, err := exec.Command("bash", script, what, ns).CombinedOutput()
		if err != nil {
			ts.Fatalf("nat-roam.sh %s %s: %v\n%s", what, ns, err, out)
		}
	}
	switch args[0] {
	case "up":
		ts.Defer(func() { exec.Command("bash", script, "down", ns).Run() })
		run("up")
	case "move", "back", "moveb", "backb":
		run(args[0])
		ts.Setenv("ROAM_MOVED", strconv.FormatInt(time.Now().UnixNano(), 10))
	case "wait":
		if len(args) != 4 {
			ts.Fatalf("usage: roam wait NS URL SECS")
		}
		secs, err := strconv.Atoi(args[3])
		ts.Check(err)
		moved, err := strconv.ParseInt(ts.Getenv("ROAM_MOVED"), 10, 64)
		if err != nil {
			ts.Fatalf("roam wait before roam move")
		}
		start := time.Unix(0, moved)
		deadline := start.Add(time.Duration(secs) * time.Second)
		tries := 0
		err = testutil.Poll(time.Until(deadline), func() error {
			tries++
			code, err := nsGet(ns, args[2], 2*time.Second)
			if err == nil && code != 200 {
				err = fmt.Errorf("HTTP %d", code)
			}
			return err
		})
		if err != nil {
			ts.Fatalf("no answer through the access port %s after the move (%d tries; last: %v)", time.Since(start).Round(time.Millisecond), tries, err)
		}
		took := time.Since(start)
		fmt.Fprintf(ts.Stdout(), "working %.2f s after the move (%d tries)\n", took.Seconds(), tries)
		if f := os.Getenv("FUNGI_ROAM_REPORT"); f != "" {
			if w, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				fmt.Fprintf(w, "%.3f\n", took.Seconds())
				w.Close()
			}
		}
	default:
		ts.Fatalf("roam %s: want up, move, back, moveb, backb or wait", args[0])
	}
}

// nsGet GETs url from inside the network namespace ns within timeout and
// returns the status code.
func nsGet(ns, url string, timeout time.Duration) (int, error) {
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // setns applies to this thread; it dies with it
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			done <- result{0, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{0, err}
			return
		}
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			done <- result{0, err}
			return
		}
		conn, err := net.DialTimeout("tcp", req.URL.Host, timeout)
		if err != nil {
			done <- result{0, err}
			return
		}
		conn.SetDeadline(time.Now().Add(timeout))
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(_ context.Context, _, _ string) (net.Conn, error) { return conn, nil }}}
		resp, err := client.Do(req)
		if err != nil {
			done <- result{0, err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, nil}
	}()
	r := <-done
	if r.err != nil && strings.Contains(r.err.Error(), "Client.Timeout") {
		r.err = fmt.Errorf("no answer within %s", timeout)
	}
	return r.code, r.err
}
