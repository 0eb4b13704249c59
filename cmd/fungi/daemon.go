package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"syscall"

	"github.com/fungi-go/fungi/internal/apisock"
	"github.com/fungi-go/fungi/internal/daemon"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/install"
	"github.com/fungi-go/fungi/internal/logging"
	"github.com/fungi-go/fungi/internal/maxprocs"
	"github.com/fungi-go/fungi/internal/sysmon"
)

// daemonCmd runs the node (`fungi daemon`, the default) and manages it: its
// log, and installing it as a system service. The run flags live on the
// group, so `fungi daemon --help` shows them; restart takes them too.
type daemonCmd struct {
	daemonFlags
	Run       daemonRunCmd       `cmd:"" default:"withargs" help:"Run the node in the foreground (the same as plain fungi daemon)."`
	Stop      daemonStopCmd      `cmd:"" help:"Stop the daemon of this home: through the service manager when installed, else by its own shutdown; waits until it is gone."`
	Restart   daemonRestartCmd   `cmd:"" help:"Stop the daemon and start it again (in the background, with the same flags, unless it is an installed service)."`
	Logs      daemonLogsCmd      `cmd:"" help:"Show the daemon's own log (HOME/logs/daemon.log); works without a running daemon."`
	Install   daemonInstallCmd   `cmd:"" help:"Run the daemon as a system service: systemd unit (Linux), launchd job (macOS), Windows service."`
	Uninstall daemonUninstallCmd `cmd:"" help:"Stop and remove the service daemon install made."`
	Status    daemonStatusCmd    `cmd:"" help:"Whether the service is installed and running, and whether the daemon answers."`
}

// daemonFlags are how a daemon is started.
type daemonFlags struct {
	Listen    []string `name:"listen" placeholder:"MULTIADDR" help:"Where to accept peers, e.g. /ip4/0.0.0.0/tcp/4433 (repeatable; default from config.yaml)."`
	Relay     []string `name:"relay" placeholder:"MULTIADDR" help:"A relay to keep a reservation on, ending /p2p/<relay id> (repeatable; added to config.yaml's relays)."`
	Bootstrap []string `name:"bootstrap" placeholder:"MULTIADDR" help:"A DHT node to start from, ending /p2p/<peer id> (repeatable; replaces config.yaml's bootstrap and turns the DHT on)."`
	LogLevel  string   `name:"log-level" placeholder:"LEVEL" help:"debug, info, warn or error (default: config.yaml log.level, else info)."`
}

type daemonRunCmd struct{}

func (*daemonRunCmd) Run(e *env, d *daemonCmd) error {
	keepMonitorAwake(e)
	c := d.daemonFlags
	run := func(ctx context.Context) error {
		go maxprocs.Run(ctx)
		return daemon.Run(ctx, daemon.Options{Home: e.home, Listen: c.Listen, Relays: c.Relay, Bootstrap: c.Bootstrap, Log: e.stderr, LogLevel: c.LogLevel})
	}
	if handled, err := underServiceManager(run); handled {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx)
}

type daemonLogsCmd struct {
	Follow bool `name:"follow" short:"f" help:"Keep printing lines as the daemon writes them, until interrupted."`
	Tail   int  `name:"tail" default:"-1" placeholder:"N" help:"Only the last N lines (default: the whole file)."`
}

// Run reads the log file itself rather than asking the daemon, so the log
// of a daemon that failed to start or died can still be read.
func (c *daemonLogsCmd) Run(e *env) error {
	path := logging.Path(e.home.Dir)
	end, err := logging.Tail(path, c.Tail, e.stdout)
	if err != nil {
		return err
	}
	if !c.Follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return logging.Follow(ctx, path, end, e.stdout)
}

// serviceScope is how a service is installed: for this user (default) or
// the whole machine, and where the unit goes.
type serviceScope struct {
	User    bool   `name:"user" xor:"scope" help:"For the current user, started at login (the default)."`
	System  bool   `name:"system" xor:"scope" help:"For the whole machine, started at boot (needs root/administrator)."`
	RunAs   string `name:"run-as" placeholder:"USER" help:"With --system: the user the daemon runs as (default: the user running the command, or SUDO_USER under sudo)."`
	UnitDir string `name:"unit-dir" env:"FUNGI_UNIT_DIR" placeholder:"DIR" help:"Write the unit/plist here instead of the system's folder, touching nothing else (tests, image builds)."`
}

func (c serviceScope) spec(e *env) (install.Spec, error) {
	exe, err := os.Executable()
	if err != nil {
		return install.Spec{}, fmt.Errorf("find this fungi binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	s := install.Spec{Exe: exe, Home: e.home.Dir, System: c.System, User: c.RunAs, Dir: c.UnitDir}
	if def, err := filepath.Abs(home.Default()); err == nil {
		s.DefaultHome = def
	}
	if s.System && s.User == "" {
		s.User = os.Getenv("SUDO_USER")
		if u, err := user.Current(); s.User == "" && err == nil && u.Uid != "0" {
			s.User = u.Username
		}
	}
	return s, nil
}

type daemonInstallCmd struct {
	serviceScope
	jsonFlag
}

func (c *daemonInstallCmd) Run(e *env) error {
	s, err := c.spec(e)
	if err != nil {
		return err
	}
	// Refused before anything is written: a path or user the service
	// file cannot hold as it is (a newline would add lines to the unit).
	if err := s.Check(); err != nil {
		return err
	}
	res, err := install.Install(s)
	if err != nil {
		return err
	}
	if c.JSON {
		return printAny(e, res)
	}
	fmt.Fprintf(e.stdout, "installed %s (runs %s on %s)\n", res.Path, s.Exe, s.Home)
	if res.Activated {
		fmt.Fprintln(e.stdout, "started; `fungi daemon status` shows it")
	}
	if res.Next != "" {
		fmt.Fprintln(e.stdout, "next:", res.Next)
	}
	return nil
}

type daemonUninstallCmd struct {
	serviceScope
	jsonFlag
}

func (c *daemonUninstallCmd) Run(e *env) error {
	s, err := c.spec(e)
	if err != nil {
		return err
	}
	res, err := install.Uninstall(s)
	if err != nil {
		return err
	}
	if c.JSON {
		return printAny(e, res)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", res.Path)
	return nil
}

type daemonStatusCmd struct {
	serviceScope
	jsonFlag
}

// daemonStatus is `fungi daemon status --json`.
type daemonStatus struct {
	install.Status
	// Answering is true when a daemon answers on this home's API socket,
	// however it was started.
	Answering bool   `json:"answering"`
	Socket    string `json:"socket"`
}

func (c *daemonStatusCmd) Run(e *env) error {
	s, err := c.spec(e)
	if err != nil {
		return err
	}
	st, err := install.StatusOf(s)
	if err != nil {
		return err
	}
	out := daemonStatus{Status: st, Socket: apisock.Address(e.home.Dir)}
	ctx, cancel := context.WithTimeout(context.Background(), apisock.DialTimeout)
	if conn, err := apisock.DialContext(ctx, out.Socket); err == nil {
		conn.Close()
		out.Answering = true
	}
	cancel()
	if c.JSON {
		return printAny(e, out)
	}
	installed := "not installed"
	if st.Installed {
		installed = "installed"
	}
	fmt.Fprintf(e.stdout, "service: %s (%s)\n", installed, st.Path)
	if st.State != "" {
		fmt.Fprintf(e.stdout, "state: %s\n", st.State)
	}
	if st.Note != "" {
		fmt.Fprintf(e.stdout, "note: %s\n", st.Note)
	}
	if out.Answering {
		fmt.Fprintf(e.stdout, "daemon: answering on %s\n", out.Socket)
	} else {
		fmt.Fprintf(e.stdout, "daemon: not answering on %s\n", out.Socket)
	}
	return nil
}

// keepMonitorAwake re-executes a daemon (the node, a relay) so the Go
// runtime's monitor does not sleep deeply between the messages it forwards
// (package sysmon): the access path's round trip is ~20% shorter. It
// returns only when it did not; why, if something failed, goes to the log.
func keepMonitorAwake(e *env) {
	if err := sysmon.KeepAwake(); err != nil {
		fmt.Fprintf(e.stderr, "fungi: %v; running with the runtime's defaults\n", err)
	}
}
