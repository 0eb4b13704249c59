// Package install makes the fungi daemon a service of the operating
// system: a systemd unit on Linux, a launchd job on macOS, a Windows
// service. Each starts `fungi -f HOME daemon` at boot (system) or login
// (user) and starts it again when it fails.
package install

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
)

// Name is the service's name for the default home: fungi.service, the
// dev.fungi.daemon launchd label, the "fungi" Windows service. Another
// home's service carries a suffix of its own (Spec.Name).
const Name = "fungi"

// Spec is what the service runs and for whom.
type Spec struct {
	// Exe is the absolute path of the fungi binary.
	Exe string
	// Home is the node folder the daemon runs on.
	Home string
	// System installs for the whole machine (started at boot) instead of
	// for the current user (started at login).
	System bool
	// User runs a system service as this user; "" means root (Linux) or
	// LocalSystem (Windows).
	User string
	// Dir, when set, is where the unit or plist is written instead of the
	// system's folder; nothing else on the system is touched (tests, and
	// packagers building an image).
	Dir string
	// DefaultHome is the default node folder (~/.fungi): its service keeps
	// the plain name, every other home's is named after the home.
	DefaultHome string
}

// Args is the daemon's command line after the binary.
func (s Spec) Args() []string { return []string{"--fungi-dir", s.Home, "daemon"} }

// Name is the service's name for s's home: "fungi" for the default home,
// else "fungi-<folder>-<hash>", so a second home installed as a service
// does not overwrite the first, and uninstall removes the right one.
func (s Spec) Name() string {
	if s.DefaultHome != "" && filepath.Clean(s.Home) == filepath.Clean(s.DefaultHome) {
		return Name
	}
	return Name + "-" + homeSuffix(s.Home)
}

// maxFolderInName bounds the folder's share of a service name.
const maxFolderInName = 24

// homeSuffix is the home's folder name in [a-z0-9-] and 8 hex digits of
// its path's SHA-256: readable, and distinct for two folders of one name.
func homeSuffix(home string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(filepath.Base(filepath.Clean(home))) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= maxFolderInName {
			break
		}
	}
	folder := strings.Trim(b.String(), "-")
	sum := sha256.Sum256([]byte(filepath.Clean(home)))
	hash := hex.EncodeToString(sum[:4])
	if folder == "" {
		return hash
	}
	return folder + "-" + hash
}

// Label is the launchd job's label for s: dev.fungi.daemon, with the
// home's suffix for a home other than the default.
func (s Spec) Label() string {
	if n := s.Name(); n != Name {
		return LaunchdLabel + "." + strings.TrimPrefix(n, Name+"-")
	}
	return LaunchdLabel
}

// Result says what Install or Uninstall did and what is left to the user.
type Result struct {
	// Path is the unit, plist or service name written or removed.
	Path string `json:"path"`
	// Activated is true when the service manager was told to start (or
	// stop) it.
	Activated bool `json:"activated"`
	// Next is what the user still has to do, "" when nothing.
	Next string `json:"next"`
}

// Status is what is known about the installed service.
type Status struct {
	Path      string `json:"path"`
	Installed bool   `json:"installed"`
	// State is the service manager's word for it (active, inactive,
	// running, …), or "" when no manager could be asked.
	State string `json:"state"`
	// Note explains a missing State.
	Note string `json:"note,omitempty"`
}

// SystemdUnit is the text of fungi.service for s, or why s cannot be
// written as one (see CheckSystemd). It is built with plain string writes
// rather than text/template: reflection in a template keeps every exported
// method of the binary alive, megabytes of the release binary.
func SystemdUnit(s Spec) (string, error) {
	if err := CheckSystemd(s); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# Written by `fungi daemon install`; `fungi daemon uninstall` removes it.\n")
	b.WriteString("[Unit]\nDescription=" + systemdValue("Fungi node ("+s.Home+")") + "\n")
	b.WriteString("Documentation=https://github.com/fungi-go/fungi\n")
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n\n")
	b.WriteString("[Service]\nType=simple\nExecStart=" + systemdExecPath(s.Exe))
	for _, a := range s.Args() {
		b.WriteString(" " + systemdExecArg(a))
	}
	b.WriteString("\n")
	if s.System && s.User != "" {
		b.WriteString("User=" + systemdValue(s.User) + "\n")
	}
	b.WriteString("Restart=on-failure\nRestartSec=5s\n")
	b.WriteString("# SIGTERM stops the node in order (services, then the peer host).\n")
	b.WriteString("KillSignal=SIGTERM\nTimeoutStopSec=30s\n\n")
	wanted := "default.target"
	if s.System {
		wanted = "multi-user.target"
	}
	b.WriteString("[Install]\nWantedBy=" + wanted + "\n")
	return b.String(), nil
}

// LaunchdLabel names the launchd job.
const LaunchdLabel = "dev.fungi.daemon"

// LaunchdPlist is the launchd job for s, every value escaped for XML, or
// why s cannot be written as one (see CheckLaunchd).
func LaunchdPlist(s Spec) (string, error) {
	if err := CheckLaunchd(s); err != nil {
		return "", err
	}
	x := func(v string) string {
		var b strings.Builder
		xml.EscapeText(&b, []byte(v)) // cannot fail on a strings.Builder
		return b.String()
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + s.Label() + `</string>
	<key>ProgramArguments</key>
	<array>
		<string>` + x(s.Exe) + "</string>\n")
	for _, a := range s.Args() {
		b.WriteString("\t\t<string>" + x(a) + "</string>\n")
	}
	b.WriteString("\t</array>\n")
	if s.System && s.User != "" {
		b.WriteString("\t<key>UserName</key>\n\t<string>" + x(s.User) + "</string>\n")
	}
	b.WriteString(`	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
		<key>NetworkState</key>
		<true/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>StandardErrorPath</key>
	<string>` + x(s.Home+"/logs/launchd.err") + `</string>
</dict>
</plist>
`)
	return b.String(), nil
}

// WindowsService describes the Windows service for s, as the service
// control manager is given it.
type WindowsService struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Description string   `json:"description"`
	Exe         string   `json:"exe"`
	Args        []string `json:"args"`
	// CommandLine is the service's command line as the service control
	// manager stores it: Exe and Args each quoted by the rules Windows
	// programs split a command line with (CommandLineToArgvW).
	CommandLine string `json:"commandLine"`
	StartType   string `json:"startType"`
	// Account is LocalSystem, or the user the service runs as.
	Account string `json:"account"`
	// Recovery restarts the service 5 s after each failure.
	Recovery string `json:"recovery"`
}

// WindowsServiceFor is the Windows service for s, or why s cannot be
// registered as one (see CheckWindows).
func WindowsServiceFor(s Spec) (WindowsService, error) {
	if err := CheckWindows(s); err != nil {
		return WindowsService{}, err
	}
	account := "LocalSystem"
	if s.User != "" {
		account = s.User
	}
	line := windowsArg(s.Exe)
	for _, a := range s.Args() {
		line += " " + windowsArg(a)
	}
	return WindowsService{
		Name:        s.Name(),
		DisplayName: "Fungi node (" + s.Name() + ")",
		Description: fmt.Sprintf("Fungi node on %s: a private peer-to-peer network for your own devices.", s.Home),
		Exe:         s.Exe,
		Args:        s.Args(),
		CommandLine: line,
		StartType:   "automatic (delayed)",
		Account:     account,
		Recovery:    "restart after 5s, every failure",
	}, nil
}
