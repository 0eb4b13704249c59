package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

func homeArg(ts *testscript.TestScript, args []string, want int) (string, []string) {
	if len(args) == want+1 {
		return ts.MkAbs(args[0]), args[1:]
	}
	return ts.Getenv("FUNGI_DIR"), args
}

func scriptClient(ts *testscript.TestScript, dir ...string) (*daemonClient, error) {
	d := ts.Getenv("FUNGI_DIR")
	if len(dir) > 0 {
		d = dir[0]
	}
	h, err := home.Open(d)
	if err != nil {
		return nil, err
	}
	e := &env{home: h, stdout: io.Discard, stderr: io.Discard}
	return e.connect()
}

// waitdaemon [DIR] waits until the daemon of DIR (or $FUNGI_DIR) answers.
func cmdWaitDaemon(ts *testscript.TestScript, neg bool, args []string) {
	dir, _ := homeArg(ts, args, 0)
	err := pollDaemon(ts, dir, 60*time.Second, func(c *daemonClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.Info(ctx, &messages.InfoRequest{})
		return err
	})
	if err != nil {
		ts.Fatalf("daemon did not come up: %v", err)
	}
}

// waitstate [DIR] NAME STATE waits until the service reports STATE.
func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	dir, args := homeArg(ts, args, 2)
	if len(args) != 2 {
		ts.Fatalf("usage: waitstate [DIR] NAME STATE")
	}
	err := pollDaemon(ts, dir, 60*time.Second, func(c *daemonClient) error {
		info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
		if err != nil {
			return err
		}
		if info.State != args[1] {
			return fmt.Errorf("state %s (last error %q)", info.State, info.LastError)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%s never became %s: %v", args[0], args[1], err)
	}
}

// svcport NAME VAR sets $VAR to the host port of the service's first port.
func cmdServicePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: svcport NAME VAR")
	}
	c, err := scriptClient(ts)
	ts.Check(err)
	defer c.Close()
	info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
	ts.Check(err)
	if len(info.Ports) == 0 {
		ts.Fatalf("%s has no ports", args[0])
	}
	ts.Setenv(args[1], strconv.Itoa(int(info.Ports[0].HostPort)))
}

// http METHOD URL [FILE] prints "HTTP <status>" and the body; it fails on a
// connection error (so `! http` asserts nothing listens).
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: http METHOD URL [BODYFILE]")
	}
	var body io.Reader
	if len(args) == 3 {
		body = strings.NewReader(ts.ReadFile(args[2]))
	}
	req, err := http.NewRequest(args[0], args[1], body)
	ts.Check(err)
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("%s %s: %v", args[0], args[1], err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if neg {
		ts.Fatalf("%s %s answered %s, want no answer", args[0], args[1], resp.Status)
	}
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, data)
}

// holdport PORT listens on 127.0.0.1:PORT until the script ends, as another
// program on the machine would.
func cmdHoldPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: holdport PORT")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+args[0])
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
}

// nodeinfo DIR IDVAR ADDRVAR sets the node's peer ID and first address.
func cmdNodeInfo(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: nodeinfo DIR IDVAR ADDRVAR")
	}
	c, err := scriptClient(ts, ts.MkAbs(args[0]))
	ts.Check(err)
	defer c.Close()
	info, err := c.Info(context.Background(), &messages.InfoRequest{})
	ts.Check(err)
	if len(info.Addrs) == 0 {
		ts.Fatalf("%s listens nowhere", args[0])
	}
	ts.Setenv(args[1], info.PeerId)
	ts.Setenv(args[2], info.Addrs[0])
}

// freeport VAR sets VAR to a loopback port that is free now.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	ln.Close()
}

// webserver VAR serves HTTP on a loopback port, as a program fungi did not
// start would, until the script ends; VAR is set to the port.
func cmdWebServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: webserver VAR")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from a program fungi did not start: %s %s\n", r.Method, r.URL.Path)
	}))
	ts.Defer(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ts.Setenv(args[0], port)
}

// accessport DIR SERVICE_ID VAR sets VAR to the local port of an access entry.
func cmdAccessPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: accessport DIR SERVICE_ID VAR")
	}
	c, err := scriptClient(ts, ts.MkAbs(args[0]))
	ts.Check(err)
	defer c.Close()
	res, err := c.ListAccess(context.Background(), &messages.AccessListRequest{})
	ts.Check(err)
	for _, e := range res.Entries {
		if e.ServiceId == args[1] {
			_, port, _ := net.SplitHostPort(e.Ports[0].LocalAddress)
			ts.Setenv(args[2], port)
			return
		}
	}
	ts.Fatalf("no access entry for %s", args[1])
}

var (
	heldMu    sync.Mutex
	heldConns = map[string]net.Conn{}
)

// holdconn NAME ADDR opens a kept-alive HTTP connection to ADDR, checks it
// answers one request, and keeps it open under NAME.
func cmdHoldConn(ts *testscript.TestScript, neg bool, args []string) {
	conn, err := net.DialTimeout("tcp", args[1], 10*time.Second)
	ts.Check(err)
	ts.Defer(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: fungi\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	ts.Check(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		ts.Fatalf("held connection got %s", resp.Status)
	}
	heldMu.Lock()
	heldConns[ts.Getenv("WORK")+args[0]] = conn
	heldMu.Unlock()
}

// connclosed NAME waits until the held connection is closed from the far
// side.
func cmdConnClosed(ts *testscript.TestScript, neg bool, args []string) {
	heldMu.Lock()
	conn := heldConns[ts.Getenv("WORK")+args[0]]
	heldMu.Unlock()
	if conn == nil {
		ts.Fatalf("no held connection %s", args[0])
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	if err == nil {
		ts.Fatalf("the connection is still open")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		ts.Fatalf("the connection stayed open for 30s")
	}
}

// registry VAR starts an OCI registry on 127.0.0.1 for the script and sets
// VAR to its host:port.
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	ts.Defer(srv.Close)
	ts.Setenv(args[0], strings.TrimPrefix(srv.URL, "http://"))
}

// subst IN OUT KEY=VALUE... copies IN to OUT replacing each @KEY@.
func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	data := ts.ReadFile(args[0])
	for _, kv := range args[2:] {
		k, v, _ := strings.Cut(kv, "=")
		data = strings.ReplaceAll(data, "@"+k+"@", v)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(data), 0o644))
}

// waitrestarts [DIR] NAME N waits until the service is running again after
// N restarts.
func cmdWaitRestarts(ts *testscript.TestScript, neg bool, args []string) {
	dir, args := homeArg(ts, args, 2)
	want, _ := strconv.Atoi(args[1])
	err := pollDaemon(ts, dir, 60*time.Second, func(c *daemonClient) error {
		info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
		if err != nil {
			return err
		}
		if int(info.Restarts) != want || info.State != "running" {
			return fmt.Errorf("state %s, restarts %d", info.State, info.Restarts)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
}

// waitlog [DIR] NAME REGEXP waits until the service's log matches: a
// container's output reaches the log through the engine, a moment later.
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	dir, args := homeArg(ts, args, 2)
	re := regexp.MustCompile(args[1])
	err := pollDaemon(ts, dir, 30*time.Second, func(c *daemonClient) error {
		stream, err := c.Logs(context.Background(), &messages.LogsRequest{Name: args[0], Tail: -1})
		if err != nil {
			return err
		}
		var all []byte
		for {
			chunk, err := stream.Recv()
			if err != nil {
				break
			}
			all = append(all, chunk.Data...)
		}
		if !re.Match(all) {
			return fmt.Errorf("no match for %q in:\n%s", args[1], all)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
}

// waitport ADDR waits until something accepts TCP connections on ADDR.
func cmdWaitPort(ts *testscript.TestScript, neg bool, args []string) {
	err := testutil.Poll(30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	ts.Check(err)
}

// waitrelay DIR RELAY_ID reserved|refused waits for the node's reservation
// on the relay to be held, or to be refused.
func cmdWaitRelay(ts *testscript.TestScript, neg bool, args []string) {
	err := pollDaemon(ts, ts.MkAbs(args[0]), 60*time.Second, func(c *daemonClient) error {
		info, err := c.Info(context.Background(), &messages.InfoRequest{})
		if err != nil {
			return err
		}
		for _, r := range info.RelayReservations {
			if r.RelayPeerId != args[1] {
				continue
			}
			if args[2] == "reserved" && r.Expires != "" {
				return nil
			}
			if args[2] == "refused" && r.Error != "" {
				return nil
			}
			return fmt.Errorf("relay state: expires %q error %q", r.Expires, r.Error)
		}
		return fmt.Errorf("no reservation attempt on %s yet", args[1])
	})
	if err != nil {
		ts.Fatalf("relay %s never %s: %v", args[1], args[2], err)
	}
}

// nshttp NETNS METHOD URL [FILE] is http run inside a network namespace,
// where a node's access port listens.
func cmdNSHTTP(ts *testscript.TestScript, neg bool, args []string) {
	done := make(chan struct{})
	var out string
	var err error
	go func() {
		defer close(done)
		runtime.LockOSThread() // setns applies to this thread; it dies with it
		var f *os.File
		if f, err = os.Open("/var/run/netns/" + args[0]); err != nil {
			return
		}
		defer f.Close()
		if err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return
		}
		var body io.Reader
		if len(args) == 4 {
			body = strings.NewReader(ts.ReadFile(args[3]))
		}
		req, _ := http.NewRequest(args[1], args[2], body)
		// Dial here, on the thread in the namespace: the transport would
		// dial from a goroutine of its own, on some other thread.
		var conn net.Conn
		if conn, err = net.DialTimeout("tcp", req.URL.Host, 10*time.Second); err != nil {
			return
		}
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}}
		var resp *http.Response
		if resp, err = client.Do(req); err != nil {
			return
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = fmt.Sprintf("HTTP %d\n%s", resp.StatusCode, data)
	}()
	<-done
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), out)
}

// pollDaemon calls check with a client of the daemon in dir until it
// returns nil or within passes.
func pollDaemon(ts *testscript.TestScript, dir string, within time.Duration, check func(*daemonClient) error) error {
	return testutil.Poll(within, func() error {
		c, err := scriptClient(ts, dir)
		if err != nil {
			return err
		}
		defer c.Close()
		return check(c)
	})
}
