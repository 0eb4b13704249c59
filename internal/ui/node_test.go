package ui_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/daemon/daemontest"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// node is a real daemon, in this process, with its dashboard on.
type node struct {
	home  *home.Home
	addr  string // the dashboard's host:port
	token string
	api   messages.DaemonClient
	info  *messages.NodeInfo
}

// startNode runs a daemon with the dashboard on 127.0.0.1:0 and waits for
// it to write the dashboard's address into its home.
func startNode(tb testing.TB) *node {
	tb.Helper()
	d := daemontest.Start(tb, daemontest.Options{Home: daemontest.NewHome(tb, daemontest.DashboardConfig)})
	n := &node{home: d.Home, api: d.API, info: d.Info}
	testutil.WaitFor(tb, 30*time.Second, "the dashboard's address in the home", func() error {
		data, err := os.ReadFile(n.home.UIAddrPath())
		if err != nil {
			return err
		}
		n.addr = strings.TrimSpace(string(data))
		return nil
	})
	tok, err := os.ReadFile(n.home.UITokenPath())
	if err != nil {
		tb.Fatal(err)
	}
	n.token = strings.TrimSpace(string(tok))
	return n
}

// loggedIn is an HTTP client holding a session from a one-time link.
func (n *node) loggedIn(tb testing.TB) *http.Client {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := c.Get(ui.LoginLink(n.token, n.addr, time.Now()))
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("login link: %s", res.Status)
	}
	return c
}

func TestTokenFileIsPrivate(t *testing.T) {
	n := startNode(t)
	st, err := os.Stat(n.home.UITokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("ui-token mode %04o, want 0600", st.Mode().Perm())
	}
}

// Every route, pages and API and metrics alike, answers 401 without the
// token, and the body says nothing about the node.
func TestNoTokenIs401OnEveryRoute(t *testing.T) {
	n := startNode(t)
	routes := []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/index.html"}, {"GET", "/app.js"}, {"GET", "/app.css"}, {"GET", "/anything"},
		{"GET", "/metrics"}, {"GET", "/api/session"}, {"GET", "/api/node"}, {"GET", "/api/services"},
		{"POST", "/api/services/pull"}, {"GET", "/api/services/x"}, {"POST", "/api/services/x/start"},
		{"POST", "/api/services/x/stop"}, {"POST", "/api/services/x/remove"}, {"GET", "/api/services/x/logs"},
		{"GET", "/api/devices"}, {"POST", "/api/devices"}, {"POST", "/api/devices/x/trust"},
		{"POST", "/api/devices/x/untrust"}, {"POST", "/api/devices/x/rename"}, {"POST", "/api/devices/x/remove"},
		{"GET", "/api/devices/x/catalog"}, {"GET", "/api/access"}, {"POST", "/api/access/attach"},
		{"POST", "/api/access/detach"}, {"GET", "/api/connections"}, {"GET", "/api/events"},
		{"GET", "/login"}, {"GET", "/login?code=1.2.3"},
	}
	// A route that wrongly served would stream (events, logs): the timeout
	// turns that into a failure rather than a hang.
	client := &http.Client{Timeout: 5 * time.Second}
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + n.token[:len(n.token)-1]} {
			req, _ := http.NewRequest(r.method, "http://"+n.addr+r.path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			_, port, _ := net.SplitHostPort(n.addr)
			req.AddCookie(&http.Cookie{Name: "fungi_session_" + port, Value: "forged"})
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s (auth %q): %s, want 401", r.method, r.path, auth, res.Status)
			}
			if strings.Contains(string(body), n.info.PeerId) || len(body) > 200 {
				t.Errorf("%s %s: a 401 body that says more than it should: %q", r.method, r.path, body)
			}
		}
	}
	// The token itself opens the API (how /metrics is scraped).
	req, _ := http.NewRequest("GET", "http://"+n.addr+"/api/node", nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %s", res.Status)
	}
}

// A login link works once.
func TestLoginLinkIsOneTime(t *testing.T) {
	n := startNode(t)
	link := ui.LoginLink(n.token, n.addr, time.Now())
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		res, err := noRedirect.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("use %d of the link: %s, want %d", i+1, res.Status, want)
		}
		if i == 0 {
			c := res.Cookies()
			if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode {
				t.Fatalf("session cookie %+v: want one, HttpOnly, SameSite=Strict", c)
			}
		}
	}
}

// A login code also works posted as a form, as the page `fungi ui`
// writes posts it from a file (Origin "null"): once, with a session cookie
// and a page that moves on to the dashboard. That origin may log in and do
// nothing else; another site's origin may not even log in, and a form too
// big for a code is refused before it is read.
func TestLoginByPost(t *testing.T) {
	dir := t.TempDir()
	srv, err := ui.Start(ui.Options{Listen: "127.0.0.1:0", TokenPath: dir + "/ui-token", API: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tok, err := ui.LoadToken(dir + "/ui-token")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr
	post := func(origin, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", base+ui.LoginPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	code := ui.LoginCode(tok, time.Now())
	form := url.Values{"code": {code}}.Encode()
	if res := post("http://evil.example", form); res.StatusCode != http.StatusForbidden {
		t.Errorf("a login form posted from another site: %s, want 403", res.Status)
	}
	if res := post("null", form+"&pad="+strings.Repeat("x", 8<<10)); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a login form of 8 KiB: %s, want 400", res.Status)
	}
	res := post("null", form)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the login form from a file: %s (Cache-Control %q), want 200, no-store", res.Status, res.Header.Get("Cache-Control"))
	}
	c := res.Cookies()
	if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want one, HttpOnly, SameSite=Strict", c)
	}
	if res := post("null", form); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the same code posted again: %s, want 401", res.Status)
	}
	// Origin "null" with the session may not reach the API.
	req, _ := http.NewRequest("GET", base+"/api/session", nil)
	req.Header.Set("Origin", "null")
	req.AddCookie(c[0])
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("/api/session from Origin null: %s, want 403", res.Status)
	}
}

// A page on another site cannot change anything: a POST that carries the
// session cookie but comes from another origin, or lacks the CSRF token,
// is refused and the service is not started.
func TestCrossSitePostRefused(t *testing.T) {
	n := startNode(t)
	c := n.loggedIn(t)
	base := "http://" + n.addr
	for _, tc := range []struct {
		name   string
		origin string
		csrf   bool
	}{
		{"another origin with the token", "http://evil.example", true},
		{"same origin without the CSRF token", base, false},
		{"no origin, no CSRF token", "", false},
	} {
		req, _ := http.NewRequest("POST", base+"/api/devices", strings.NewReader(`{"peerId":"`+n.info.PeerId+`","alias":"x"}`))
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.csrf {
			req.Header.Set("X-Fungi-CSRF", csrfOf(t, c, base))
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", tc.name, res.Status)
		}
	}
	// The same request from the dashboard itself passes the checks and
	// reaches the daemon, which answers with its own rule.
	req, _ := http.NewRequest("POST", base+"/api/services/nope/start", nil)
	req.Header.Set("Origin", base)
	req.Header.Set("X-Fungi-CSRF", csrfOf(t, c, base))
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "nope") {
		t.Fatalf("own POST: %s %s, want the daemon's 404 about the service", res.Status, body)
	}
}

func csrfOf(t *testing.T, c *http.Client, base string) string {
	res, err := c.Get(base + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	s := string(body)
	i := strings.Index(s, `"csrf":"`)
	if i < 0 {
		t.Fatalf("/api/session: %s", s)
	}
	s = s[i+8:]
	return s[:strings.Index(s, `"`)]
}

// DNS rebinding: a name that resolves to 127.0.0.1 sends itself as Host;
// the dashboard answers only to its loopback names, even with a session.
func TestForeignHostRefused(t *testing.T) {
	n := startNode(t)
	c := n.loggedIn(t)
	u, _ := url.Parse("http://" + n.addr)
	for _, host := range []string{"evil.example:" + u.Port(), "evil.example", "127.0.0.1:1", "localhost.evil.example:" + u.Port()} {
		req, _ := http.NewRequest("GET", "http://"+n.addr+"/api/node", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+n.token)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host %s: %s, want 421", host, res.Status)
		}
	}
}

// The listener is on loopback only, and a non-loopback ui.listen is
// refused rather than served.
func TestLoopbackOnly(t *testing.T) {
	n := startNode(t)
	host, _, _ := net.SplitHostPort(n.addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("dashboard on %s, want a loopback address", n.addr)
	}
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		s, err := ui.Start(ui.Options{Listen: listen, TokenPath: t.TempDir() + "/tok"})
		if err == nil {
			s.Close()
			t.Errorf("ui.Start(%s) served; want it refused", listen)
		}
	}
}

func scrape(t *testing.T, n *node) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", res.Status)
	}
	return string(body)
}

// /metrics, scraped with the token, has the node's series; a wasm
// service's requests are counted and timed.
func TestMetricsScrape(t *testing.T) {
	n := startNode(t)
	pullWasm(t, n, "metered")
	info, err := n.api.Start(context.Background(), &messages.StartService{Name: "metered"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + info.Ports[0].HostAddress + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	body := scrape(t, n)
	// Whatever the guest answered (without its data mount it fails), the
	// request is counted under its status.
	if !regexp.MustCompile(`(?m)^fungi_wasm_requests_total\{code="[0-9]{3}",service="metered"\} 1$`).MatchString(body) {
		t.Errorf("/metrics does not count the wasm request:\n%s", body)
	}
	for _, want := range []string{
		`fungi_services{state="running"} 1`, `fungi_services{state="stopped"} 0`,
		`fungi_service_restarts_total{service="metered"} 0`,
		`fungi_wasm_request_duration_seconds_count{service="metered"} 1`,
		`fungi_peer_connections{path="direct"} 0`, `fungi_peer_connections{path="relayed"} 0`,
		`fungi_relay_reservations{status="ok"} 0`, `fungi_access_entries 0`, `fungi_daemon_up 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
