package install

import (
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The service files are text a service manager parses again: a path or
// user name that holds a newline or a quote could end its own line and
// add others (an ExecStartPre= running as root). Rather than hope an
// escape covers every such character, a Spec holding one is refused
// before anything is written; what is left is quoted by each format's own
// rules (systemdExecArg, xml.EscapeText, windowsArg).

// Check is the check for this system's service manager: CheckSystemd on
// Linux, CheckLaunchd on macOS, CheckWindows on Windows.
func (s Spec) Check() error {
	switch runtime.GOOS {
	case "darwin":
		return CheckLaunchd(s)
	case "windows":
		return CheckWindows(s)
	}
	return CheckSystemd(s)
}

// CheckSystemd says why s cannot be written as a systemd unit: a path
// that is not absolute, not UTF-8 or holds a control character, or a
// --run-as that is not a user name systemd accepts.
func CheckSystemd(s Spec) error {
	if err := checkPaths(s, func(p string) bool { return strings.HasPrefix(p, "/") }); err != nil {
		return err
	}
	// systemd refuses a program path with a quote or a backslash in it
	// ("Executable name contains special characters"), however quoted, and
	// one that is not normalized.
	if i := strings.IndexAny(s.Exe, systemdExeForbidden); i >= 0 {
		return fmt.Errorf("the fungi binary's path %q holds %q, which systemd refuses in a program path however it is quoted; put the fungi binary in a folder whose path has no quote or backslash (e.g. /usr/local/bin)", s.Exe, s.Exe[i])
	}
	if path.Clean(s.Exe) != s.Exe {
		return fmt.Errorf("the fungi binary's path %q is not in its plain form (%s), which systemd requires", s.Exe, path.Clean(s.Exe))
	}
	if s.System && s.User != "" && !posixUser(s.User, 31) && !numericUID(s.User) {
		return userError(s.User, "systemd accepts a login name (letters, digits, \"_\", \"-\" and \".\", starting with a letter or \"_\", at most 31 characters) or a numeric uid")
	}
	return nil
}

// CheckLaunchd says why s cannot be written as a launchd plist: a path
// that is not absolute, not UTF-8 or holds a control character (XML 1.0
// cannot carry most of them even escaped), or a user that is not a macOS
// short name.
func CheckLaunchd(s Spec) error {
	if err := checkPaths(s, func(p string) bool { return strings.HasPrefix(p, "/") }); err != nil {
		return err
	}
	if s.System && s.User != "" && !posixUser(s.User, 255) {
		return userError(s.User, "launchd accepts a short user name (letters, digits, \"_\", \"-\" and \".\", starting with a letter or \"_\")")
	}
	return nil
}

// systemdExeForbidden are what systemd refuses in ExecStart='s program
// path (string_is_safe); control characters are refused for every path.
const systemdExeForbidden = `"'\`

// windowsPathForbidden are characters no Windows file name holds; a '"'
// would also end the quoting of the service's command line.
const windowsPathForbidden = `"<>|*`

// windowsUserForbidden are characters Windows refuses in account names.
const windowsUserForbidden = `"/[]:;|=,+*?<>`

// CheckWindows says why s cannot be registered as a Windows service: a
// path that is not absolute, not UTF-8, or holds a control character or
// one no Windows path holds, or an account that is not NAME, DOMAIN\NAME
// or NAME@DOMAIN.
func CheckWindows(s Spec) error {
	if err := checkPaths(s, windowsAbs); err != nil {
		return err
	}
	for _, p := range []struct{ what, path string }{{"the fungi binary's path", s.Exe}, {"the node folder", s.Home}} {
		if i := strings.IndexAny(p.path, windowsPathForbidden); i >= 0 {
			return fmt.Errorf("%s %q holds %q, which no Windows path can hold; use a path without it", p.what, p.path, p.path[i])
		}
	}
	if s.User == "" {
		return nil
	}
	u := s.User
	ok := utf8.ValidString(u) && len(u) <= 256 && !hasControl(u) && !strings.ContainsAny(u, windowsUserForbidden) &&
		strings.TrimSpace(u) == u && strings.Count(u, `\`) <= 1
	if domain, name, found := strings.Cut(u, `\`); found && (domain == "" || name == "") {
		ok = false
	}
	if !ok {
		return userError(u, `Windows accepts NAME, DOMAIN\NAME (.\NAME for a local account) or NAME@DOMAIN, without control characters or any of `+windowsUserForbidden)
	}
	return nil
}

// checkPaths refuses an Exe or Home that is empty, not absolute by abs,
// not UTF-8 (unit files and XML are UTF-8 text) or holds a control
// character (a newline ends the line it is on; XML cannot carry most).
func checkPaths(s Spec, abs func(string) bool) error {
	for _, p := range []struct{ what, path, fix string }{
		{"the fungi binary's path", s.Exe, "put the fungi binary in a folder whose path has none (e.g. /usr/local/bin) and run daemon install from there"},
		{"the node folder", s.Home, "choose a node folder whose path has none (fungi -f DIR daemon install)"},
	} {
		switch {
		case p.path == "":
			return fmt.Errorf("%s is empty; %s", p.what, p.fix)
		case !utf8.ValidString(p.path):
			return fmt.Errorf("%s %q is not valid UTF-8, which a service file cannot hold; %s", p.what, p.path, p.fix)
		case hasControl(p.path):
			return fmt.Errorf("%s %q holds a control character (a newline, tab or the like), which a service file cannot hold; %s", p.what, p.path, p.fix)
		case !abs(p.path):
			return fmt.Errorf("%s %q is not an absolute path; a service starts in another folder, so give it whole", p.what, p.path)
		}
	}
	return nil
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

func userError(u, rule string) error {
	return fmt.Errorf("--run-as %q is not a user name the service manager accepts: %s; pass an existing user's login name", u, rule)
}

// posixUser is systemd's rule for a user name (valid_user_group_name),
// with the dots its relaxed mode and useradd allow: a letter or "_", then
// letters, digits, "_", "-" or ".", at most max bytes.
func posixUser(u string, max int) bool {
	if u == "" || len(u) > max {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// numericUID is a uid systemd takes in User=: decimal, 32 bits, and
// neither of the two values it reserves as invalid (65535, 2^32-1).
func numericUID(u string) bool {
	if u == "" || strings.TrimLeft(u, "0123456789") != "" || len(u) > 1 && u[0] == '0' {
		return false
	}
	n, err := strconv.ParseUint(u, 10, 32)
	return err == nil && n != 65535 && n != 1<<32-1
}

// windowsAbs is filepath.IsAbs as it is on Windows, whatever system runs
// this: C:\… or C:/…, or a \\server\share path.
func windowsAbs(p string) bool {
	if strings.HasPrefix(p, `\\`) {
		return len(p) > 2
	}
	return len(p) >= 3 && unicode.IsLetter(rune(p[0])) && p[0] < utf8.RuneSelf && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// systemdValue is v for a plain unit setting (Description=, User=): each
// "%" doubled so no specifier is expanded. The line itself is safe because
// Check refused control characters.
func systemdValue(v string) string { return strings.ReplaceAll(v, "%", "%%") }

// systemdExecPath quotes the program word of ExecStart= by
// systemd.syntax(7): in double quotes, "\" and `"` escaped, "%" doubled.
// "$" is left alone: systemd does not substitute variables in the program
// path, so "$$" would stay "$$" there.
func systemdExecPath(p string) string { return systemdQuote(p, false) }

// systemdExecArg quotes an argument word of ExecStart= as
// systemdExecPath does, with "$" doubled too: systemd substitutes $NAME in
// arguments.
func systemdExecArg(a string) string { return systemdQuote(a, true) }

func systemdQuote(s string, dollar bool) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
		case r == '%':
			b.WriteByte('%')
		case r == '$' && dollar:
			b.WriteByte('$')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// windowsArg quotes one word of a Windows command line so that
// CommandLineToArgvW (and Go's os.Args on Windows) splits it back
// unchanged: syscall.EscapeArg's rules, which mgr.CreateService applies to
// the service's binary path and arguments.
func windowsArg(s string) string {
	if s == "" {
		return `""`
	}
	special := strings.ContainsAny(s, `"\`)
	space := strings.ContainsAny(s, " \t")
	if !special && !space {
		return s
	}
	var b strings.Builder
	if space {
		b.WriteByte('"')
	}
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			for ; slashes > 0; slashes-- {
				b.WriteByte('\\')
			}
			b.WriteByte('\\')
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	if space {
		for ; slashes > 0; slashes-- {
			b.WriteByte('\\')
		}
		b.WriteByte('"')
	}
	return b.String()
}
