//go:build darwin

package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/atomicfile"
)

const launchctlTimeout = 30 * time.Second

// PlistPath is ~/Library/LaunchAgents (user), /Library/LaunchDaemons
// (system) or s.Dir, with dev.fungi.daemon.plist.
func PlistPath(s Spec) (string, error) {
	dir := s.Dir
	if dir == "" && s.System {
		dir = "/Library/LaunchDaemons"
	}
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(h, "Library", "LaunchAgents")
	}
	return filepath.Join(dir, s.Label()+".plist"), nil
}

func domain(s Spec) string {
	if s.System {
		return "system"
	}
	return fmt.Sprintf("gui/%d", os.Getuid())
}

func launchctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), launchctlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "launchctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("launchctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Install writes the plist and bootstraps the job.
func Install(s Spec) (Result, error) {
	plist, err := LaunchdPlist(s)
	if err != nil {
		return Result{}, err
	}
	path, err := PlistPath(s)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Result{}, err
	}
	if err := atomicfile.Write(path, []byte(plist), 0o644); err != nil {
		return Result{}, err
	}
	res := Result{Path: path}
	if s.Dir != "" {
		res.Next = "load it with: launchctl bootstrap " + domain(s) + " " + path
		return res, nil
	}
	launchctl("bootout", domain(s)+"/"+s.Label()) // an older copy, if loaded
	if err := launchctl("bootstrap", domain(s), path); err != nil {
		return res, err
	}
	res.Activated = true
	return res, nil
}

// Uninstall unloads the job and removes the plist.
func Uninstall(s Spec) (Result, error) {
	path, err := PlistPath(s)
	if err != nil {
		return Result{}, err
	}
	res := Result{Path: path}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("no fungi launchd job at %s; nothing to uninstall", path)
	}
	if s.Dir == "" {
		res.Activated = launchctl("bootout", domain(s)+"/"+s.Label()) == nil
	}
	return res, os.Remove(path)
}

// StatusOf says whether the plist is there and launchd knows the job.
func StatusOf(s Spec) (Status, error) {
	path, err := PlistPath(s)
	if err != nil {
		return Status{}, err
	}
	st := Status{Path: path}
	_, err = os.Stat(path)
	st.Installed = err == nil
	if s.Dir == "" {
		if launchctl("print", domain(s)+"/"+s.Label()) == nil {
			st.State = "loaded"
		} else {
			st.State = "not loaded"
		}
	}
	return st, nil
}

// Control asks launchd to stop, start or restart the job of s. Stop sends
// SIGTERM: the daemon exits 0 and KeepAlive (SuccessfulExit false) leaves
// it stopped.
func Control(s Spec, action string) error {
	target := domain(s) + "/" + s.Label()
	switch action {
	case "stop":
		return launchctl("kill", "SIGTERM", target)
	case "start":
		return launchctl("kickstart", target)
	default:
		return launchctl("kickstart", "-k", target)
	}
}

// Managed says whether launchd has s's job loaded.
func Managed(s Spec) bool {
	st, err := StatusOf(s)
	return err == nil && st.Installed && st.State == "loaded"
}

// Startable is false: launchd kickstarts a loaded job whether or not it
// runs, so Managed covers every job a restart can go through.
func Startable(Spec) bool { return false }
