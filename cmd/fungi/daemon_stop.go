package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/apisock"
	"github.com/fungi-go/fungi/internal/daemon"
	"github.com/fungi-go/fungi/internal/install"
	"github.com/fungi-go/fungi/internal/logging"
	"github.com/fungi-go/fungi/messages"
)

// stopPoll is how often a stop or start is checked on; the wait itself is
// bounded by --timeout.
const stopPoll = 50 * time.Millisecond

type daemonStopCmd struct {
	Timeout time.Duration `name:"timeout" default:"30s" help:"How long to wait for the daemon to finish stopping."`
	jsonFlag
}

// stopResult is `fungi daemon stop --json`.
type stopResult struct {
	// WasRunning is false when no daemon ran on the home.
	WasRunning bool `json:"wasRunning"`
	PID        int  `json:"pid"`
	// Via is how it was stopped: "service" (the service manager), "api"
	// (the daemon's own shutdown, asked on its socket) or "signal"
	// (SIGTERM, when the socket did not answer).
	Via     string `json:"via"`
	Service string `json:"service"`
	// Took is how long the stop took, in milliseconds.
	TookMS int64 `json:"tookMs"`
	// Started is set by restart: the PID of the daemon started again.
	Started int `json:"started"`
}

func (c *daemonStopCmd) Run(e *env) error {
	res, _, err := stopDaemon(e, c.Timeout)
	if err != nil {
		return err
	}
	if c.JSON {
		return printAny(e, res)
	}
	fmt.Fprintln(e.stdout, describeStop(e, res))
	return nil
}

func describeStop(e *env, res stopResult) string {
	switch {
	case !res.WasRunning:
		return fmt.Sprintf("no daemon was running on %s", e.home.Dir)
	case res.Via == "service":
		return fmt.Sprintf("stopped the service %s (%d ms)", res.Service, res.TookMS)
	case res.Via == "signal":
		return fmt.Sprintf("the daemon (PID %d) did not answer on its socket; sent it SIGTERM; stopped (%d ms)", res.PID, res.TookMS)
	default:
		return fmt.Sprintf("stopped the daemon (PID %d) on %s (%d ms)", res.PID, e.home.Dir, res.TookMS)
	}
}

// managedService is the installed service of this home that a service
// manager runs now, if any: stop and restart go through the manager, which
// would otherwise start the daemon again or show it failed.
func managedService(e *env) (install.Spec, bool) {
	for _, system := range []bool{false, true} {
		s, err := serviceScope{System: system}.spec(e)
		if err == nil && install.Managed(s) {
			return s, true
		}
	}
	return install.Spec{}, false
}

// stoppedService is the installed service of this home that its manager
// knows but does not run, when no daemon runs on the home either: restart
// starts it through the manager, which then keeps it running, instead of
// starting a daemon the manager knows nothing of.
func stoppedService(e *env) (install.Spec, bool) {
	if _, running, err := daemon.Running(e.home); err != nil || running {
		return install.Spec{}, false
	}
	for _, system := range []bool{false, true} {
		s, err := serviceScope{System: system}.spec(e)
		if err == nil && install.Startable(s) {
			return s, true
		}
	}
	return install.Spec{}, false
}

// stopDaemon stops the home's daemon and waits, up to timeout, until it
// has let go of the home. The reply says how the daemon had been started
// when it was asked through its socket.
func stopDaemon(e *env, timeout time.Duration) (stopResult, *messages.ShutdownReply, error) {
	began := time.Now()
	deadline := began.Add(timeout)
	if s, ok := managedService(e); ok {
		res := stopResult{WasRunning: true, Via: "service", Service: s.Name()}
		res.PID, _, _ = daemon.Running(e.home)
		if err := install.Control(s, "stop"); err != nil {
			return res, nil, err
		}
		err := waitStopped(e, deadline, res.PID)
		res.TookMS = time.Since(began).Milliseconds()
		return res, nil, err
	}
	pid, running, err := daemon.Running(e.home)
	if err != nil {
		return stopResult{}, nil, fmt.Errorf("check whether a daemon runs on %s: %w", e.home.Dir, err)
	}
	if !running {
		return stopResult{}, nil, nil
	}
	res := stopResult{WasRunning: true, PID: pid, Via: "api"}
	reply, err := askShutdown(e)
	if err != nil {
		if pid == 0 {
			return res, nil, fmt.Errorf("the daemon on %s holds the home but does not answer on its socket (%v), and its PID is unknown; end it from the system's process list", e.home.Dir, err)
		}
		if serr := terminate(pid); serr != nil {
			return res, nil, fmt.Errorf("the daemon (PID %d) does not answer on its socket (%v), and SIGTERM failed: %v", pid, err, serr)
		}
		res.Via = "signal"
	} else if reply.Pid > 0 {
		res.PID = int(reply.Pid)
	}
	err = waitStopped(e, deadline, res.PID)
	res.TookMS = time.Since(began).Milliseconds()
	return res, reply, err
}

// askShutdown asks the daemon on its socket to stop.
func askShutdown(e *env) (*messages.ShutdownReply, error) {
	c, err := e.connect()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Shutdown(ctx, &messages.ShutdownRequest{})
}

// waitStopped waits until no daemon holds the home, or says it still does
// at the deadline.
func waitStopped(e *env, deadline time.Time, pid int) error {
	for {
		_, running, err := daemon.Running(e.home)
		if err != nil {
			return err
		}
		if !running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (PID %d) on %s is still stopping; `fungi daemon logs --tail 20` shows what it is doing; to end it at once: %s", pid, e.home.Dir, killHint(pid))
		}
		time.Sleep(stopPoll)
	}
}

// daemonRestartCmd takes the daemon's flags (`fungi daemon --listen X
// restart`); those not given are the stopped daemon's.
type daemonRestartCmd struct {
	Timeout time.Duration `name:"timeout" default:"30s" help:"How long to wait for the stop, and then for the new daemon to answer."`
	jsonFlag
}

// Run stops the daemon and starts it again: through the service manager
// for an installed service (also one stopped by `fungi daemon stop`), else
// as a background process of its own with the flags the old one had (or
// the ones given), its output in HOME/logs/daemon.out.
func (c *daemonRestartCmd) Run(e *env, d *daemonCmd) error {
	s, running := managedService(e)
	stopped := false
	if !running {
		s, stopped = stoppedService(e)
	}
	if running || stopped {
		began := time.Now()
		old, _, _ := daemon.Running(e.home)
		if err := install.Control(s, "restart"); err != nil {
			return err
		}
		if err := waitAnswering(e, began.Add(c.Timeout), nil, ""); err != nil {
			return err
		}
		res := stopResult{WasRunning: running, PID: old, Via: "service", Service: s.Name(), TookMS: time.Since(began).Milliseconds()}
		res.Started, _, _ = daemon.Running(e.home)
		if c.JSON {
			return printAny(e, res)
		}
		verb := "restarted"
		if stopped {
			verb = "started"
		}
		fmt.Fprintf(e.stdout, "%s the service %s; the daemon (PID %d) answers (%d ms)\n", verb, s.Name(), res.Started, res.TookMS)
		return nil
	}
	res, reply, err := stopDaemon(e, c.Timeout)
	if err != nil {
		return err
	}
	if !c.JSON {
		fmt.Fprintln(e.stdout, describeStop(e, res))
	}
	args := daemonArgs(e, d.daemonFlags, reply)
	pid, err := startDetached(e, args, c.Timeout)
	if err != nil {
		return err
	}
	res.Started = pid
	if c.JSON {
		return printAny(e, res)
	}
	fmt.Fprintf(e.stdout, "started the daemon (PID %d) on %s; it logs to %s\n", pid, e.home.Dir, logging.Path(e.home.Dir))
	return nil
}

// daemonArgs is the new daemon's command line: the flags given to restart,
// else those the stopped daemon reported.
func daemonArgs(e *env, c daemonFlags, old *messages.ShutdownReply) []string {
	listen, relays, bootstrap, level := c.Listen, c.Relay, c.Bootstrap, c.LogLevel
	if old != nil {
		if len(listen) == 0 {
			listen = old.Listen
		}
		if len(relays) == 0 {
			relays = old.Relays
		}
		if len(bootstrap) == 0 {
			bootstrap = old.Bootstrap
		}
		if level == "" {
			level = old.LogLevel
		}
	}
	args := []string{"--fungi-dir", e.home.Dir, "daemon"}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	for _, r := range relays {
		args = append(args, "--relay", r)
	}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	if level != "" {
		args = append(args, "--log-level", level)
	}
	return args
}

// startDetached starts this binary as a daemon in a session of its own
// (it outlives the command and the terminal) and waits until it answers
// on its socket, or says why it exited.
func startDetached(e *env, args []string, timeout time.Duration) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find this fungi binary: %w", err)
	}
	outPath := filepath.Join(filepath.Dir(logging.Path(e.home.Dir)), "daemon.out")
	if err := os.MkdirAll(filepath.Dir(outPath), 0o700); err != nil {
		return 0, err
	}
	// Errors from before the daemon opens its log (a bad config.yaml, a
	// taken port) land here; the file starts afresh at each restart.
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = detachedAttr()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitAnswering(e, time.Now().Add(timeout), exited, outPath); err != nil {
		return cmd.Process.Pid, err
	}
	return cmd.Process.Pid, nil
}

// maxOutTail bounds what of daemon.out an error quotes.
const maxOutTail = 2048

// waitAnswering waits until the home's daemon answers on its socket; a
// daemon that exits first is reported with the end of its output.
func waitAnswering(e *env, deadline time.Time, exited <-chan error, outPath string) error {
	sock := apisock.Address(e.home.Dir)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the daemon exited while starting (%v): %s", err, tailOf(outPath))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), apisock.DialTimeout)
		conn, err := apisock.DialContext(ctx, sock)
		cancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not answer on %s in time; `fungi daemon logs --tail 20` shows why", sock)
		}
		time.Sleep(stopPoll)
	}
}

func tailOf(path string) string {
	if path == "" {
		return "see `fungi daemon logs`"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > maxOutTail {
		b = b[len(b)-maxOutTail:]
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return "no output; see `fungi daemon logs`"
	}
	return terminalSafe(text)
}
