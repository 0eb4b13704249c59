package install

import (
	"context"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostileNames are folder names a user may really have, each holding what
// systemd, XML or a Windows command line treats specially.
var hostileNames = []string{
	"a b",
	"100%h",
	"%n%%",
	`"dq"`,
	"it's",
	`back\slash`,
	`trailing\`,
	"$HOME",
	"${X}",
	"$$",
	";",
	"a ; b",
	"ünï cødé",
	"<x>&amp;",
	`it's "a" 50%h $x\y;z`,
}

// controlHomes are home paths no service file can hold.
var controlHomes = []string{
	"/srv/a\nExecStartPre=/bin/sh -c 'id > /tmp/pwned'\nX=",
	"/srv/a\rb",
	"/srv/a\tb",
	"/srv/a\x00b",
	"/srv/a\x7fb",
	"/srv/a\u0085b", // NEL, a C1 control
	"/srv/\xff",     // not UTF-8
}

// A home or binary path with quotes, spaces, backslashes, "%" and "$"
// comes back out of the unit exactly: one ExecStart= whose argv, as
// systemd splits, unquotes and expands it, is the binary, -f, the home
// and daemon, and a Description= with no specifier left to expand.
// Where systemd-analyze is installed (CI), systemd itself checks each
// unit: it must find the binary at the very path written, so a quoting
// mistake in the path fails there too.
func TestSystemdUnitKeepsHostilePaths(t *testing.T) {
	analyze := systemdAnalyze(t)
	for _, name := range hostileNames {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := Spec{Exe: filepath.Join(dir, name, "fungi"), Home: filepath.Join(dir, "home", name), System: true, User: "root"}
			if strings.ContainsAny(name, systemdExeForbidden) {
				// systemd refuses these in a program path, however quoted
				// (checked by the systemd-analyze case below too).
				if _, err := SystemdUnit(s); err == nil || !strings.Contains(err.Error(), "systemd refuses") {
					t.Fatalf("binary path %q: want a clear refusal, got %v", s.Exe, err)
				}
				s.Exe = filepath.Join(dir, "bin", "fungi")
			}
			unit, err := SystemdUnit(s)
			if err != nil {
				t.Fatalf("refused %q: %v", name, err)
			}
			settings := parseUnit(t, unit)
			var execStart []string
			for _, st := range settings {
				if st.key == "ExecStart" {
					execStart = append(execStart, st.value)
				}
			}
			if len(execStart) != 1 {
				t.Fatalf("want one ExecStart=, got %d:\n%s", len(execStart), unit)
			}
			if argv, want := execArgv(t, execStart[0]), []string{s.Exe, "--fungi-dir", s.Home, "daemon"}; !slices.Equal(argv, want) {
				t.Fatalf("ExecStart= splits to %q, want %q:\n%s", argv, want, unit)
			}
			if got, want := settingValue(t, settings, "Description"), "Fungi node ("+s.Home+")"; got != want {
				t.Fatalf("Description= reads %q, want %q", got, want)
			}
			if got := settingValue(t, settings, "User"); got != "root" {
				t.Fatalf("User= reads %q", got)
			}
			if analyze == "" {
				return
			}
			if err := os.MkdirAll(filepath.Dir(s.Exe), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "fungi.service")
			if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", path).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
			}
		})
	}
}

// systemdAnalyze is the path of systemd-analyze, or "" when it is not
// installed; FUNGI_REQUIRE_SYSTEMD=1 (CI) makes its absence a failure.
func systemdAnalyze(t *testing.T) string {
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("FUNGI_REQUIRE_SYSTEMD") == "1" {
			t.Fatal("no systemd-analyze (Debian package systemd) and FUNGI_REQUIRE_SYSTEMD=1")
		}
		t.Log("no systemd-analyze: the units are checked by the test's own parser only")
		return ""
	}
	return path
}

// A home or binary path with a control character, or not UTF-8, is
// refused with a clear error by all three formats, before any file is
// written: a newline in it would otherwise start a line of its own in the
// unit (an ExecStartPre= run as root).
func TestControlCharactersRefused(t *testing.T) {
	for _, home := range controlHomes {
		for _, s := range []Spec{{Exe: "/usr/bin/fungi", Home: home}, {Exe: home + "/fungi", Home: "/srv/fungi"}} {
			if unit, err := SystemdUnit(s); err == nil {
				t.Errorf("SystemdUnit took %q:\n%s", home, unit)
			} else if !strings.Contains(err.Error(), "control character") && !strings.Contains(err.Error(), "UTF-8") {
				t.Errorf("SystemdUnit(%q): unclear error %v", home, err)
			}
			if _, err := LaunchdPlist(s); err == nil {
				t.Errorf("LaunchdPlist took %q", home)
			}
			ws := Spec{Exe: `C:\fungi\fungi.exe`, Home: `C:\srv` + strings.TrimPrefix(home, "/srv")}
			if _, err := WindowsServiceFor(ws); err == nil {
				t.Errorf("WindowsServiceFor took %q", ws.Home)
			}
		}
	}
	dir := t.TempDir()
	_, err := Install(Spec{Exe: "/usr/bin/fungi", Home: controlHomes[0], Dir: dir})
	if err == nil {
		t.Fatal("Install took a home with a newline")
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("Install wrote %v before refusing", entries)
	}
}

// --run-as is a user name systemd accepts (or a numeric uid), and nothing
// else: "root\nExecStartPre=…" would add a line to the unit.
func TestRunAsChecked(t *testing.T) {
	for _, u := range []string{"root", "fungi", "_fungi", "john.doe", "svc-fungi", "a1", "0", "1000", "4294967294"} {
		if _, err := SystemdUnit(Spec{Exe: "/usr/bin/fungi", Home: "/srv/fungi", System: true, User: u}); err != nil {
			t.Errorf("refused user %q: %v", u, err)
		}
	}
	for _, u := range []string{"root\nExecStartPre=/bin/sh -c 'id > /tmp/pwned'", "root\n", "root;x", "root x", "-root", "1abc", ".x", "a:b", "a/b",
		"%n", "root%", "65535", "4294967295", "99999999999", "007", strings.Repeat("a", 32), "ü"} {
		_, err := SystemdUnit(Spec{Exe: "/usr/bin/fungi", Home: "/srv/fungi", System: true, User: u})
		if err == nil || !strings.Contains(err.Error(), "--run-as") {
			t.Errorf("user %q: want a --run-as error, got %v", u, err)
		}
		if _, err := LaunchdPlist(Spec{Exe: "/usr/bin/fungi", Home: "/srv/fungi", System: true, User: u}); err == nil && strings.ContainsAny(u, "\n;: /%") {
			t.Errorf("LaunchdPlist took user %q", u)
		}
	}
	for _, u := range []string{`.\ana`, `CORP\ana`, `NT AUTHORITY\LocalService`, "ana@corp.example"} {
		if _, err := WindowsServiceFor(Spec{Exe: `C:\fungi\fungi.exe`, Home: `C:\srv`, System: true, User: u}); err != nil {
			t.Errorf("Windows refused account %q: %v", u, err)
		}
	}
	for _, u := range []string{"ana\nx", `a\b\c`, `\ana`, `CORP\`, "a:b", `a"b`, " ana"} {
		if _, err := WindowsServiceFor(Spec{Exe: `C:\fungi\fungi.exe`, Home: `C:\srv`, System: true, User: u}); err == nil {
			t.Errorf("Windows took account %q", u)
		}
	}
}

// Relative paths are refused: a service starts in another folder.
func TestRelativePathsRefused(t *testing.T) {
	if _, err := SystemdUnit(Spec{Exe: "/usr/bin/fungi", Home: "node"}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("SystemdUnit: %v", err)
	}
	if _, err := LaunchdPlist(Spec{Exe: "fungi", Home: "/srv"}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("LaunchdPlist: %v", err)
	}
	if _, err := WindowsServiceFor(Spec{Exe: `C:\fungi.exe`, Home: `node`}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("WindowsServiceFor: %v", err)
	}
}

// The plist parses with encoding/xml and gives back every string as it
// went in.
func TestPlistKeepsHostilePaths(t *testing.T) {
	for _, name := range hostileNames {
		s := Spec{Exe: "/opt/" + name + "/fungi", Home: "/srv/" + name, System: true, User: "_fungi"}
		p, err := LaunchdPlist(s)
		if err != nil {
			t.Fatalf("refused %q: %v", name, err)
		}
		values := plistValues(t, p)
		if got, want := values["ProgramArguments"], []string{s.Exe, "--fungi-dir", s.Home, "daemon"}; !slices.Equal(got, want) {
			t.Errorf("ProgramArguments %q, want %q", got, want)
		}
		if got := values["UserName"]; !slices.Equal(got, []string{"_fungi"}) {
			t.Errorf("UserName %q", got)
		}
		if got := values["StandardErrorPath"]; !slices.Equal(got, []string{s.Home + "/logs/launchd.err"}) {
			t.Errorf("StandardErrorPath %q", got)
		}
	}
}

// plistValues reads the top dict of a plist with encoding/xml (strict):
// each key's <string>s, one or an array of them.
func plistValues(t *testing.T, p string) map[string][]string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(p))
	d.Strict = true
	values := map[string][]string{}
	var key, elem string
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return values
			}
			t.Fatalf("plist: %v\n%s", err, p)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			elem = tok.Name.Local
		case xml.EndElement:
			depth--
			elem = ""
		case xml.CharData:
			switch {
			case elem == "key" && depth == 3:
				key = string(tok)
			case elem == "string":
				values[key] = append(values[key], string(tok))
			}
		}
	}
}

// The Windows command line splits back, by CommandLineToArgvW's rules,
// into the binary and the arguments, whatever the home holds.
func TestWindowsCommandLineKeepsHostilePaths(t *testing.T) {
	for _, name := range hostileNames {
		if strings.Contains(name, `"`) || strings.ContainsAny(name, windowsPathForbidden) {
			continue // no Windows path holds these; refused by TestWindowsPathsRefused
		}
		s := Spec{Exe: `C:\Program Files\` + name + `\fungi.exe`, Home: `C:\Users\` + name}
		w, err := WindowsServiceFor(s)
		if err != nil {
			t.Fatalf("refused %q: %v", name, err)
		}
		if got, want := windowsArgv(w.CommandLine), []string{s.Exe, "--fungi-dir", s.Home, "daemon"}; !slices.Equal(got, want) {
			t.Errorf("%s splits to %q, want %q", w.CommandLine, got, want)
		}
	}
}

// What no Windows path holds is refused, a '"' above all: it would end
// the quoting of the service's command line.
func TestWindowsPathsRefused(t *testing.T) {
	for _, home := range []string{`C:\a"b`, `C:\a<b`, `C:\a|b`, `C:\a*b`} {
		if _, err := WindowsServiceFor(Spec{Exe: `C:\fungi.exe`, Home: home}); err == nil {
			t.Errorf("took %q", home)
		}
	}
}

// windowsArgv splits a command line as CommandLineToArgvW does (the
// program name: up to the closing quote or a space, no escapes; then
// 2n backslashes and a quote are n backslashes and a quote toggle, 2n+1
// are n and a literal quote).
func windowsArgv(line string) []string {
	var argv []string
	i := 0
	if strings.HasPrefix(line, `"`) {
		end := strings.IndexByte(line[1:], '"')
		argv = append(argv, line[1:1+end])
		i = end + 2
	} else {
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		argv = append(argv, line[:end])
		i = end
	}
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			return argv
		}
		var b strings.Builder
		quoted := false
		for i < len(line) && (quoted || line[i] != ' ' && line[i] != '\t') {
			n := 0
			for i < len(line) && line[i] == '\\' {
				n++
				i++
			}
			if i < len(line) && line[i] == '"' {
				b.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					b.WriteByte('"')
				} else if quoted && i+1 < len(line) && line[i+1] == '"' {
					b.WriteByte('"')
					i++
				} else {
					quoted = !quoted
				}
				i++
				continue
			}
			b.WriteString(strings.Repeat(`\`, n))
			if i < len(line) && (quoted || line[i] != ' ' && line[i] != '\t') {
				b.WriteByte(line[i])
				i++
			}
		}
		argv = append(argv, b.String())
	}
}

type unitSetting struct{ section, key, value string }

// parseUnit reads a unit as systemd's parser does for the lines this
// package writes: [Section] headers, comments, Key=Value. A line that is
// none of these fails the test (systemd would log and skip it).
func parseUnit(t *testing.T, unit string) []unitSetting {
	t.Helper()
	var out []unitSetting
	section := ""
	for _, line := range strings.Split(strings.TrimSuffix(unit, "\n"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case strings.HasSuffix(line, `\`):
			t.Fatalf("line %q continues onto the next", line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("line %q is not Key=Value:\n%s", line, unit)
			}
			out = append(out, unitSetting{section, strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	want := []string{"Description", "Documentation", "Wants", "After", "Type", "ExecStart", "User", "Restart", "RestartSec",
		"KillSignal", "TimeoutStopSec", "WantedBy"}
	for _, s := range out {
		if !slices.Contains(want, s.key) {
			t.Fatalf("unexpected setting %s=%s:\n%s", s.key, s.value, unit)
		}
	}
	return out
}

// settingValue is the one value of key with its specifiers expanded.
func settingValue(t *testing.T, settings []unitSetting, key string) string {
	t.Helper()
	var vals []string
	for _, s := range settings {
		if s.key == key {
			vals = append(vals, s.value)
		}
	}
	if len(vals) != 1 {
		t.Fatalf("%s= set %d times", key, len(vals))
	}
	return expandSpecifiers(t, vals[0])
}

// expandSpecifiers fails on any specifier but "%%", which it turns to
// "%": fungi's unit must leave nothing for systemd to expand.
func expandSpecifiers(t *testing.T, v string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 == len(v) || v[i+1] != '%' {
			t.Fatalf("%q holds a specifier systemd would expand", v)
		}
		b.WriteByte('%')
		i++
	}
	return b.String()
}

// execArgv splits an ExecStart= value the way systemd does
// (config_parse_exec): specifiers expanded on the whole line, then words
// split, unquoted and C-unescaped; at start, "$$" in the arguments (not
// the program path) becomes "$" and any other "$" would be substituted,
// which fails the test.
func execArgv(t *testing.T, v string) []string {
	t.Helper()
	v = expandSpecifiers(t, v)
	var argv []string
	for i := 0; ; {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i == len(v) {
			break
		}
		var b strings.Builder
		var quote byte
		for i < len(v) {
			c := v[i]
			switch {
			case quote == 0 && (c == ' ' || c == '\t'):
				goto word
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
				if i+1 < len(v) && v[i+1] != ' ' && v[i+1] != '\t' {
					t.Fatalf("%q: a quote closes inside a word", v)
				}
			case c == '\\':
				i++
				if i == len(v) {
					t.Fatalf("%q ends in a backslash", v)
				}
				switch v[i] {
				case '\\', '"', '\'':
					b.WriteByte(v[i])
				default:
					t.Fatalf("%q: escape \\%c this test does not expect", v, v[i])
				}
			default:
				b.WriteByte(c)
			}
			i++
		}
		if quote != 0 {
			t.Fatalf("%q: unbalanced quoting", v)
		}
	word:
		argv = append(argv, b.String())
	}
	for n := 1; n < len(argv); n++ {
		a := argv[n]
		var b strings.Builder
		for i := 0; i < len(a); i++ {
			if a[i] == '$' {
				if i+1 == len(a) || a[i+1] != '$' {
					t.Fatalf("argument %q holds a $ systemd would substitute", a)
				}
				i++
			}
			b.WriteByte(a[i])
		}
		argv[n] = b.String()
	}
	return argv
}
