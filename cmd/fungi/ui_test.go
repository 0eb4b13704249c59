//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/ui"
)

// dashboardInHome serves a real dashboard for a fresh home, as the daemon
// does: its token and address files in the home.
func dashboardInHome(t *testing.T) (*home.Home, *ui.Server) {
	t.Helper()
	h, err := home.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ui.Start(ui.Options{Listen: "127.0.0.1:0", TokenPath: h.UITokenPath(), AddrPath: h.UIAddrPath(), API: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return h, srv
}

// fungiUI runs `fungi ui` against h on a desktop (DISPLAY set) and returns
// the login link it printed and the browser command it started.
func fungiUI(t *testing.T, h *home.Home) (link string, browser *exec.Cmd) {
	t.Helper()
	oldEnv, oldStart := desktopEnv, startBrowser
	t.Cleanup(func() { desktopEnv, startBrowser = oldEnv, oldStart })
	desktopEnv = func(k string) string {
		if k == "DISPLAY" {
			return ":0"
		}
		return ""
	}
	startBrowser = func(cmd *exec.Cmd) error { browser = cmd; return nil }
	var stdout, stderr bytes.Buffer
	if err := (&uiCmd{}).Run(&env{home: h, stdout: &stdout, stderr: &stderr}); err != nil {
		t.Fatalf("fungi ui: %v (%s)", err, stderr.String())
	}
	if browser == nil {
		t.Fatalf("fungi ui started no browser on a desktop; stderr: %s", stderr.String())
	}
	return strings.TrimSpace(stdout.String()), browser
}

// TestUIBrowserCommandHoldsNoCode: the browser `fungi ui` starts gets a
// file, not the login link: no part of the one-time code is in its
// arguments or environment (which every local user may read), the file is
// mode 0600 in a folder of mode 0700, both the user's, and the file's form
// logs in on the real dashboard.
func TestUIBrowserCommandHoldsNoCode(t *testing.T) {
	h, srv := dashboardInHome(t)
	link, browser := fungiUI(t, h)
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("fungi ui printed %q, want the login link", link)
	}
	code := u.Query().Get("code")
	parts := strings.Split(code, ".")
	if len(parts) != 3 {
		t.Fatalf("login code %q", code)
	}
	seen := append(append([]string{}, browser.Args...), browser.Env...)
	if browser.Env == nil {
		seen = append(seen, os.Environ()...) // the command inherits ours
	}
	for _, s := range seen {
		for _, p := range append(parts, code) {
			if strings.Contains(s, p) {
				t.Fatalf("the browser command %q (or its environment) carries part of the login code: %q", browser.Args, s)
			}
		}
	}
	if len(browser.Args) != 2 || browser.Args[0] != "xdg-open" || !strings.HasPrefix(browser.Args[1], "file:///") {
		t.Fatalf("browser command %q, want xdg-open file:///…", browser.Args)
	}
	page, err := url.Parse(browser.Args[1])
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{page.Path: 0o600, filepath.Dir(page.Path): 0o700 | os.ModeDir} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
			t.Errorf("%s belongs to uid %d, not this user (%d)", path, st.Uid, os.Getuid())
		}
	}
	if !strings.HasPrefix(page.Path, h.Dir+string(filepath.Separator)) {
		t.Errorf("the login page %s is outside the node's home %s", page.Path, h.Dir)
	}

	// Follow the page's form as a browser does: a POST from a file, whose
	// Origin is "null".
	data, err := os.ReadFile(page.Path)
	if err != nil {
		t.Fatal(err)
	}
	form := regexp.MustCompile(`<form method="post" action="([^"]+)"><input type="hidden" name="code" value="([^"]+)">`).FindStringSubmatch(string(data))
	if form == nil || form[1] != "http://"+srv.Addr+ui.LoginPath || form[2] != code {
		t.Fatalf("the login page does not post the code to the dashboard:\n%s", data)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", form[1], strings.NewReader(url.Values{"code": {form[2]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 || !strings.HasPrefix(res.Cookies()[0].Name, "fungi_session_") {
		t.Fatalf("posting the login page's form: %s, cookies %v; want 200 (a page that opens the dashboard) and a session cookie", res.Status, res.Cookies())
	}
	res, err = client.Get("http://" + srv.Addr + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("with the session from the login page, /api/session answers %s", res.Status)
	}
}

// TestUILoginPageInBrowser opens the page `fungi ui` writes in headless
// Chromium, as xdg-open would: the browser ends on the dashboard, logged
// in, with the code nowhere in its history.
func TestUILoginPageInBrowser(t *testing.T) {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("FUNGI_REQUIRE_BROWSER") == "1" {
			t.Fatalf("no %s (Debian package chromium) and FUNGI_REQUIRE_BROWSER=1", chromium)
		}
		t.Skipf("no %s (Debian package chromium): skipping the browser test", chromium)
	}
	h, srv := dashboardInHome(t)
	link, browser := fungiUI(t, h)
	code, _ := url.Parse(link)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer func() { cancelTimeout(); cancel(); cancelAlloc() }()
	if err := chromedp.Do(ctx, chromedp.Navigate(browser.Args[1])); err != nil {
		t.Fatalf("opening %s: %v", browser.Args[1], err)
	}
	// The page posts, the dashboard answers, the browser moves on to "/":
	// several navigations, during which an evaluation may fail.
	want := "http://" + srv.Addr + "/"
	testutil.WaitFor(t, 30*time.Second, "the dashboard's page, logged in", func() error {
		at, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + (document.querySelector("#main") ? "dashboard" : document.body.innerText)`))
		if err != nil {
			return err
		}
		if at != want+" dashboard" {
			return fmt.Errorf("at %s", at)
		}
		// The dashboard answers /api/session only to a logged-in browser.
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`fetch("/api/session").then(r => r.status === 200)`, chromedp.EvalAwaitPromise))
		if err != nil || !ok {
			return fmt.Errorf("on the dashboard, not logged in (%v)", err)
		}
		return nil
	})
	hist, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.referrer`))
	if err != nil || strings.Contains(hist, code.Query().Get("code")) {
		t.Fatalf("the login code shows in the browser's address or referrer: %q (%v)", hist, err)
	}
}
