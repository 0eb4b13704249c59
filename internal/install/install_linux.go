//go:build linux

package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/atomicfile"
)

// systemctlTimeout bounds each call to systemctl.
const systemctlTimeout = 30 * time.Second

// unitDir is where the unit goes: s.Dir, /etc/systemd/system, or the
// user's ~/.config/systemd/user.
func unitDir(s Spec) (string, error) {
	if s.Dir != "" {
		return s.Dir, nil
	}
	if s.System {
		return "/etc/systemd/system", nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user's systemd folder: %w; pass --unit-dir", err)
	}
	return filepath.Join(cfg, "systemd", "user"), nil
}

// UnitPath is the path of fungi.service for s.
func UnitPath(s Spec) (string, error) {
	dir, err := unitDir(s)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, s.Name()+".service"), nil
}

// systemdRunning reports whether systemd is the init system here: only
// then can systemctl enable and start a unit.
func systemdRunning() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func systemctl(s Spec, args ...string) (string, error) {
	if !s.System {
		args = append([]string{"--user"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), systemctlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func userFlag(s Spec) string {
	if s.System {
		return ""
	}
	return "--user "
}

// Install writes fungi.service and, where systemd runs and the unit went
// to the system's own folder, enables and starts it.
func Install(s Spec) (Result, error) {
	unit, err := SystemdUnit(s)
	if err != nil {
		return Result{}, err
	}
	path, err := UnitPath(s)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Result{}, fmt.Errorf("create %s: %w (a system unit needs root: sudo fungi daemon install --system)", filepath.Dir(path), err)
	}
	if err := atomicfile.Write(path, []byte(unit), 0o644); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", path, err)
	}
	res := Result{Path: path}
	enable := fmt.Sprintf("systemctl %sdaemon-reload && systemctl %senable --now %s", userFlag(s), userFlag(s), s.Name())
	switch {
	case s.Dir != "":
		res.Next = "the unit is in " + s.Dir + "; copy it to the systemd folder, then: " + enable
	case !systemdRunning():
		res.Next = "systemd is not running on this machine (it is not PID 1), so nothing was started; where systemd runs: " + enable
	default:
		if _, err := systemctl(s, "daemon-reload"); err != nil {
			return res, err
		}
		if _, err := systemctl(s, "enable", "--now", s.Name()); err != nil {
			return res, err
		}
		res.Activated = true
	}
	if !s.System {
		// A user service runs only while its user is logged in, unless
		// lingering is on: a headless home server needs it to start at boot.
		note := "a user service runs only while you are logged in; on a headless server, to start it at boot: sudo loginctl enable-linger " + currentUser()
		if res.Next != "" {
			note = res.Next + "; " + note
		}
		res.Next = note
	}
	return res, nil
}

// Uninstall stops and disables the unit where systemd runs, and removes it.
func Uninstall(s Spec) (Result, error) {
	path, err := UnitPath(s)
	if err != nil {
		return Result{}, err
	}
	res := Result{Path: path}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("no fungi unit for %s at %s; nothing to uninstall (was it installed with --system, or for another --fungi-dir?)", s.Home, path)
	}
	if s.Dir == "" && systemdRunning() {
		if _, err := systemctl(s, "disable", "--now", s.Name()); err != nil {
			return res, err
		}
		res.Activated = true
	}
	if err := os.Remove(path); err != nil {
		return res, fmt.Errorf("remove %s: %w", path, err)
	}
	if res.Activated {
		systemctl(s, "daemon-reload")
	}
	return res, nil
}

// StatusOf says whether the unit is installed and, where systemd runs,
// whether it is active.
func StatusOf(s Spec) (Status, error) {
	path, err := UnitPath(s)
	if err != nil {
		return Status{}, err
	}
	st := Status{Path: path}
	if _, err := os.Stat(path); err == nil {
		st.Installed = true
	}
	switch {
	case s.Dir != "":
		st.Note = "a unit folder was given; systemd was not asked"
	case !systemdRunning():
		st.Note = "systemd is not running on this machine (not PID 1); it cannot say whether the unit is active"
	default:
		out, _ := systemctl(s, "is-active", s.Name()) // exits non-zero when inactive
		st.State = out
	}
	return st, nil
}

// currentUser names the user for loginctl, "$USER" when unknown.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "$USER"
}

// Control asks systemd to stop, start or restart the unit of s.
func Control(s Spec, action string) error {
	_, err := systemctl(s, action, s.Name())
	return err
}

// Managed says whether a service manager runs s's service now, so stop
// and restart go through it rather than around it.
func Managed(s Spec) bool {
	st, err := StatusOf(s)
	return err == nil && st.Installed && (st.State == "active" || st.State == "activating" || st.State == "reloading")
}

// Startable says whether s's unit is installed where systemd knows it but
// does not run now (stopped, or failed): restart starts it through
// systemd, which then keeps it running, rather than beside it.
func Startable(s Spec) bool {
	st, err := StatusOf(s)
	return err == nil && st.Installed && (st.State == "inactive" || st.State == "failed")
}
