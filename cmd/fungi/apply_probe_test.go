package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/runtimes/docker"
)

// downtimeProbe asks a URL again and again and keeps the longest time the
// URL did not answer 200: from the last answer before a failure to the
// first after it.
type downtimeProbe struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	ok, fail int
	longest  time.Duration
}

var (
	probesMu sync.Mutex
	probes   = map[string]*downtimeProbe{}
)

// cmdProbe is `probe start NAME URL` and `probe stop NAME MAXMS`: the
// second prints the measured downtime and fails past MAXMS, or when the
// probe never had an answer.
func cmdProbe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: probe start NAME URL | probe stop NAME MAXMS")
	}
	key := ts.Getenv("WORK") + "/" + args[1]
	switch args[0] {
	case "start":
		p := &downtimeProbe{stop: make(chan struct{}), done: make(chan struct{})}
		probesMu.Lock()
		probes[key] = p
		probesMu.Unlock()
		go p.run(args[2])
		ts.Defer(func() { p.halt() })
	case "stop":
		probesMu.Lock()
		p := probes[key]
		delete(probes, key)
		probesMu.Unlock()
		if p == nil {
			ts.Fatalf("no probe %s", args[1])
		}
		p.halt()
		max, err := strconv.Atoi(args[2])
		ts.Check(err)
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintf(ts.Stdout(), "downtime %s: %d ms (%d requests failed of %d)\n", args[1], p.longest.Milliseconds(), p.fail, p.ok+p.fail)
		if p.ok == 0 {
			ts.Fatalf("probe %s never had an answer", args[1])
		}
		if p.longest > time.Duration(max)*time.Millisecond {
			ts.Fatalf("downtime %s: %s, more than %d ms", args[1], p.longest, max)
		}
	default:
		ts.Fatalf("probe start|stop")
	}
}

func (p *downtimeProbe) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *downtimeProbe) run(url string) {
	defer close(p.done)
	// A connection per request: what a new client sees, not a kept-alive
	// connection to the old instance (the process's shared transport
	// would also hand that to the script's next http command).
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var lastOK, failedSince time.Time
	for {
		select {
		case <-p.stop:
			p.mu.Lock()
			if !failedSince.IsZero() && !lastOK.IsZero() {
				// Still failing when stopped: that counts too.
				p.longest = max(p.longest, time.Since(lastOK))
			}
			p.mu.Unlock()
			return
		case <-tick.C:
		}
		good := false
		if res, err := client.Get(url); err == nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
			good = res.StatusCode == http.StatusOK
		}
		now := time.Now()
		p.mu.Lock()
		if good {
			p.ok++
			if !failedSince.IsZero() && !lastOK.IsZero() {
				p.longest = max(p.longest, now.Sub(lastOK))
			}
			lastOK, failedSince = now, time.Time{}
		} else {
			p.fail++
			if failedSince.IsZero() {
				failedSince = now
			}
		}
		p.mu.Unlock()
	}
}

// cmdWaitContainers is `containers DIR N`: it waits until the engine
// holds exactly N containers of that home's node.
func cmdWaitContainers(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: containers DIR N")
	}
	h, err := home.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	_, id, err := h.Identity()
	ts.Check(err)
	err = testutil.Poll(30*time.Second, func() error {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+docker.LabelNode+"="+id.String()).Output()
		if err != nil {
			return err
		}
		ids := strings.Fields(string(out))
		if strconv.Itoa(len(ids)) != args[1] {
			return fmt.Errorf("%d containers of the node, want %s: %v", len(ids), args[1], ids)
		}
		return nil
	})
	ts.Check(err)
}
