// Package ui serves the node's web dashboard on a loopback address: the
// embedded pages, the JSON API of internal/webapi and /metrics, all behind
// the node's UI token (a one-time login link sets a session cookie), with
// CSRF, Host and Origin checks so no other site and no DNS rebinding reach
// it.
package ui

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fungi-go/fungi/internal/atomicfile"
)

//go:embed assets
var assets embed.FS

// sessionCookie prefixes the session cookie's name; the port follows,
// since browsers share cookies between ports and two nodes on one machine
// each have a dashboard.
const sessionCookie = "fungi_session_"

// csrfHeader carries the session's CSRF token on state-changing requests.
const csrfHeader = "X-Fungi-CSRF"

// Options configure Start.
type Options struct {
	// Listen is a loopback host:port (port 0 picks one).
	Listen string
	// TokenPath is the node's UI token file (created when missing).
	TokenPath string
	// AddrPath receives the address served on, for `fungi ui`.
	AddrPath string
	// API serves /api/ (the paths arrive whole).
	API http.Handler
	// Metrics serves /metrics.
	Metrics http.Handler
}

// Server is a running dashboard.
type Server struct {
	// Addr is the host:port it listens on.
	Addr      string
	srv       *http.Server
	addrPath  string
	closeOnce sync.Once
}

// Start listens and serves in the background. A listen address that is
// not loopback is refused: the dashboard controls the node.
func Start(opts Options) (*Server, error) {
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("ui.listen %q: %v (want a loopback host:port such as 127.0.0.1:4434)", opts.Listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("ui.listen %q is not a loopback address; the dashboard is served on 127.0.0.1 or ::1 only", opts.Listen)
	}
	token, err := LoadToken(opts.TokenPath)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("the dashboard cannot listen on %s: %v (another node or program holds the port; set ui.listen in config.yaml to another port, e.g. 127.0.0.1:0)", opts.Listen, err)
	}
	s := &Server{Addr: ln.Addr().String(), addrPath: opts.AddrPath}
	h := &handler{sess: newSessions(token), api: opts.API, metrics: opts.Metrics, port: portOf(s.Addr)}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	if opts.AddrPath != "" {
		if err := atomicfile.Write(opts.AddrPath, []byte(s.Addr+"\n"), 0o600); err != nil {
			ln.Close()
			return nil, err
		}
	}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops serving at once: open event streams never end on their
// own, and the dashboard's other requests are short. Calling it again does
// nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.addrPath != "" {
			os.Remove(s.addrPath)
		}
		s.srv.Close()
	})
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

type handler struct {
	sess    *sessions
	api     http.Handler
	metrics http.Handler
	port    string
}

// hostOK accepts only the loopback names of this listener: a page on
// another site whose name a rebinding DNS points at 127.0.0.1 sends its
// own name as Host, and is refused.
func (h *handler) hostOK(host string) bool {
	switch host {
	case "127.0.0.1:" + h.port, "localhost:" + h.port, "[::1]:" + h.port:
		return true
	}
	return false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	if !h.hostOK(r.Host) {
		http.Error(w, "refused: the dashboard answers only to 127.0.0.1, localhost or [::1] on its own port", http.StatusMisdirectedRequest)
		return
	}
	// The login page `fungi ui` writes is a local file, whose form posts
	// with Origin "null"; on /login the code is the credential, so that
	// origin may bring one.
	if o := r.Header.Get("Origin"); o != "" && !h.hostOK(strings.TrimPrefix(o, "http://")) && !(r.URL.Path == LoginPath && o == "null") {
		http.Error(w, "refused: a request from another site", http.StatusForbidden)
		return
	}
	if r.URL.Path == LoginPath {
		h.login(w, r)
		return
	}
	sid, viaCookie := "", false
	if c, err := r.Cookie(sessionCookie + h.port); err == nil && h.sess.valid(c.Value, time.Now()) {
		sid, viaCookie = c.Value, true
	}
	if !viaCookie && !h.sess.bearerOK(r.Header.Get("Authorization")) {
		unauthorized(w)
		return
	}
	if viaCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		// A cookie rides along with any request the browser sends; the CSRF
		// token only with the dashboard's own, which read it from /api/session.
		if r.Header.Get(csrfHeader) != h.sess.csrf(sid) || r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "refused: missing or wrong CSRF token; reload the dashboard", http.StatusForbidden)
			return
		}
	}
	switch {
	case r.URL.Path == "/api/session":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "{\"csrf\":%q}\n", h.sess.csrf(sid))
	case r.URL.Path == "/metrics":
		if h.metrics == nil {
			http.NotFound(w, r)
			return
		}
		h.metrics.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		h.api.ServeHTTP(w, r)
	default:
		h.asset(w, r)
	}
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "unauthorized: open the dashboard with `fungi ui`", http.StatusUnauthorized)
}

// maxLoginForm bounds a posted login form: a code is under 200 bytes.
const maxLoginForm = 4 << 10

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	var code string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		code = r.URL.Query().Get("code")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
		if err := r.ParseForm(); err != nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "bad login form ("+err.Error()+"): post one field, code, as `fungi ui` does", http.StatusBadRequest)
			return
		}
		code = r.PostForm.Get("code")
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "the login link takes GET or POST", http.StatusMethodNotAllowed)
		return
	}
	sid, err := h.sess.redeem(code, time.Now())
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "unauthorized: "+err.Error()+"; run `fungi ui` for a new link", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie + h.port, Value: sid, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLifetime / time.Second)})
	if r.Method == http.MethodPost {
		// The form came from a file (`fungi ui`'s login page), another
		// site: a redirect would keep the navigation cross-site and the
		// browser would withhold the SameSite=Strict cookie from "/". The
		// dashboard's own page moves on to "/" instead, a same-site step.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, loggedInPage)
		return
	}
	// A redirect drops the code from the address bar and history.
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// loggedInPage answers a posted login: it opens the dashboard.
const loggedInPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/">
<title>Fungi dashboard</title></head>
<body><p>Logged in. <a href="/">Open the dashboard</a>.</p></body></html>
`

// asset serves the embedded pages; any path that is not a file is the
// single-page app's index, which routes by its #fragment.
func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(assets, "assets")
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" || errors.Is(func() error { _, err := fs.Stat(sub, name); return err }(), fs.ErrNotExist) {
		name = "index.html"
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, sub, name)
}
