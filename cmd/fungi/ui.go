package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/ui"
)

type uiCmd struct {
	NoBrowser bool `name:"no-browser" help:"Only print the login link."`
	jsonFlag
}

// uiLink is `fungi ui --json`.
type uiLink struct {
	// URL is the one-time login link; it works once, within two minutes.
	URL string `json:"url"`
	// Address is where the dashboard listens.
	Address string `json:"address"`
}

// desktopEnv and startBrowser are how `fungi ui` finds a desktop and
// starts its browser; tests replace them to see the command that would run.
var (
	desktopEnv   = os.Getenv
	startBrowser = func(cmd *exec.Cmd) error {
		if err := cmd.Start(); err != nil {
			return err
		}
		go cmd.Wait()
		return nil
	}
)

func (c *uiCmd) Run(e *env) error {
	code, addr, err := dashboardLogin(e)
	if err != nil {
		return err
	}
	link := ui.LoginURL(addr, code)
	if c.JSON {
		data, err := jsonMarshalIndent(uiLink{URL: link, Address: addr})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", data)
		return err
	}
	// The link on stdout goes to the user's own terminal; the browser gets
	// a private file instead, since a command line is readable by every
	// user of the machine (/proc/PID/cmdline).
	fmt.Fprintln(e.stdout, link)
	fmt.Fprintln(e.stderr, "a one-time login link: it works once, within two minutes; run `fungi ui` again for another")
	if c.NoBrowser || browserCommand(runtime.GOOS, "", desktopEnv) == nil {
		return nil // no desktop to show a page: no page written
	}
	page, err := writeLoginPage(loginPageDir(e), addr, code, time.Now())
	if err != nil {
		fmt.Fprintf(e.stderr, "not opening a browser: %v; open the link above instead\n", err)
		return nil
	}
	if err := startBrowser(browserCommand(runtime.GOOS, fileURL(page), desktopEnv)); err != nil {
		os.Remove(page)
		fmt.Fprintf(e.stderr, "could not start a browser (%v); open the link above\n", err)
	}
	return nil
}

// dashboardLogin mints a login code for the running daemon's dashboard
// from the token in the home (only whoever may read the home may log in)
// and returns it with the dashboard's address.
func dashboardLogin(e *env) (code, addr string, err error) {
	data, err := os.ReadFile(e.home.UIAddrPath())
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("the dashboard is not running on %s: start the node with `%s`, with ui.enabled: true in %s; if the daemon logged \"dashboard off\", set ui.listen to a free port",
			e.home.Dir, e.daemonCommand(), e.home.ConfigPath())
	}
	if err != nil {
		return "", "", err
	}
	addr = strings.TrimSpace(string(data))
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", "", fmt.Errorf("the dashboard does not answer on %s (%v): the daemon may have died; start it again with `%s`", addr, err, e.daemonCommand())
	}
	conn.Close()
	tok, err := os.ReadFile(e.home.UITokenPath())
	if err != nil {
		return "", "", fmt.Errorf("reading the dashboard's token: %w", err)
	}
	return ui.LoginCode(strings.TrimSpace(string(tok)), time.Now()), addr, nil
}

// browserCommand is the command that opens target in the desktop's
// browser, or nil where no desktop is there to show it. Its arguments and
// environment are readable by every local user: target must hold no secret.
func browserCommand(goos, target string, getenv func(string) string) *exec.Cmd {
	switch goos {
	case "darwin":
		return exec.Command("open", target)
	case "windows":
		return exec.Command("rundll32", "url.dll,FileProtocolHandler", target)
	default:
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return nil
		}
		return exec.Command("xdg-open", target)
	}
}

// loginPageDir holds the login pages `fungi ui` hands the browser.
func loginPageDir(e *env) string { return filepath.Join(e.home.Dir, "ui-login") }

// loginPagePrefix starts every login page's name; stale ones are removed
// by the next `fungi ui`.
const loginPagePrefix = "login-"

// writeLoginPage writes a page that posts code to the dashboard at addr
// when the browser opens it: mode 0600 in dir, a folder of mode 0700 the
// user owns, so no other local user reads the code. Pages older than a
// login's lifetime (their codes dead) are removed first.
func writeLoginPage(dir, addr, code string, now time.Time) (string, error) {
	if err := privateDir(dir); err != nil {
		return "", err
	}
	removeStaleLoginPages(dir, now)
	var name [12]byte
	rand.Read(name[:])
	path := filepath.Join(dir, loginPagePrefix+hex.EncodeToString(name[:])+".html")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing the login page: %w", err)
	}
	page := fmt.Sprintf(loginPageHTML, html.EscapeString("http://"+addr+ui.LoginPath), html.EscapeString(code))
	if _, err := f.WriteString(page); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("writing the login page: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("writing the login page: %w", err)
	}
	return path, nil
}

// loginPageHTML posts the code as a form, so it stays out of the
// browser's history; without scripts the button does the same.
const loginPageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>Fungi dashboard: logging in</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="%s"><input type="hidden" name="code" value="%s">
<button type="submit">Open the Fungi dashboard</button></form>
</body></html>
`

// privateDir makes dir a folder only its owner, this user, may enter: it
// creates it with mode 0700, or checks that the existing one is a real
// folder (not a link) owned by this user and narrows its mode to 0700.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("making the login page folder: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is not a folder; remove it and run `fungi ui` again", dir)
	}
	if !ownedByMe(fi) {
		return fmt.Errorf("%s belongs to another user; remove it and run `fungi ui` again", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// removeStaleLoginPages removes the login pages in dir whose codes have
// expired; a page is read by the browser within moments of being written.
func removeStaleLoginPages(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		if !strings.HasPrefix(ent.Name(), loginPagePrefix) || !strings.HasSuffix(ent.Name(), ".html") {
			continue
		}
		if fi, err := ent.Info(); err == nil && now.Sub(fi.ModTime()) > ui.LoginLifetime {
			os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}

// fileURL is the file:// URL of an absolute path.
func fileURL(path string) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}
