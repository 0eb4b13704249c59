package names

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fungi-go/fungi/messages"
)

// Limits of the names port: it is loopback only, but every page a browser
// has open on it holds connections.
const (
	maxConns          = 256
	maxHeaderBytes    = 32 << 10
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	dialTimeout       = 10 * time.Second
	// responseHeaderTimeout bounds how long a service may think before its
	// first byte; streams (server-sent events, websockets) answer their
	// headers at once and then run as long as they like.
	responseHeaderTimeout = 2 * time.Minute
	listTimeout           = 5 * time.Second
)

// Options configure Start.
type Options struct {
	// Listen is a loopback host:port (port 0 picks one).
	Listen string
	// Entries lists this node's access entries, each with its Alias.
	Entries func(ctx context.Context) ([]*messages.AccessEntry, error)
}

// Server is a running names port.
type Server struct {
	// Addr is the host:port it listens on.
	Addr      string
	srv       *http.Server
	closeOnce sync.Once
}

// Start listens and serves in the background. An address that is not
// loopback is refused: the names reach services other devices trust this
// node with, and only this machine's browsers may use them.
func Start(opts Options) (*Server, error) {
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("names.listen %q: %v (want a loopback host:port such as 127.0.0.1:%s)", opts.Listen, err, "8479")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("names.listen %q is not a loopback address; the names port is served on 127.0.0.1 or ::1 only", opts.Listen)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("the names port cannot listen on %s: %v (another node or program holds it; set names.listen in config.yaml to another port, or names.enabled to false)", opts.Listen, err)
	}
	s := &Server{Addr: ln.Addr().String()}
	h := &handler{entries: opts.Entries, base: s.Addr, proxy: newProxy()}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	go s.srv.Serve(&limitListener{Listener: ln, slots: make(chan struct{}, maxConns)})
	return s, nil
}

// Close stops serving at once. Calling it again does nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() { s.srv.Close() })
}

type handler struct {
	entries func(ctx context.Context) ([]*messages.AccessEntry, error)
	base    string
	proxy   *httputil.ReverseProxy
}

// targetKey carries the chosen local address to the proxy's Rewrite.
type targetKey struct{}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	bare := host == "localhost" || host == "127.0.0.1" || host == "::1" || host == "[::1]"
	if !bare && !strings.HasSuffix(host, ".localhost") {
		// A page whose own name a rebinding DNS points at 127.0.0.1 sends
		// that name: it gets nothing from here.
		http.Error(w, "refused: the names port answers only to NAME.localhost (and localhost for its list of names)", http.StatusMisdirectedRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), listTimeout)
	entries, err := h.entries(ctx)
	cancel()
	if err != nil {
		http.Error(w, "the daemon did not list its access entries: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	Assign(entries, h.base)
	if bare {
		h.list(w, http.StatusOK, "", entries)
		return
	}
	e, name, _ := Lookup(entries, r.Host)
	if e == nil {
		h.list(w, http.StatusNotFound, name, entries)
		return
	}
	addr := webAddress(e)
	if addr == "" {
		http.Error(w, name+" has no local port; detach and attach it again (`fungi access attach`)", http.StatusBadGateway)
		return
	}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target{addr: addr, name: name})))
}

type target struct{ addr, name string }

// webAddress is the local address of an entry's web port: one named http
// or web, else its first.
func webAddress(e *messages.AccessEntry) string {
	for _, p := range e.Ports {
		if p.Name == "http" || p.Name == "web" {
			return p.LocalAddress
		}
	}
	if len(e.Ports) > 0 {
		return e.Ports[0].LocalAddress
	}
	return ""
}

func newProxy() *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext:            (&net.Dialer{Timeout: dialTimeout}).DialContext,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes * 2,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConnsPerHost:    8,
	}
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(target)
			pr.SetURL(&url.URL{Scheme: "http", Host: t.addr})
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t := r.Context().Value(targetKey{}).(target)
			if errors.Is(err, context.Canceled) {
				return
			}
			http.Error(w, fmt.Sprintf("%s is attached at %s, but it did not answer: %v.\nIs the device online and the service running? `fungi access list` and `fungi device list` show them.", t.name, t.addr, err), http.StatusBadGateway)
		},
	}
}

// listHead and listFoot frame the list page. It is built with
// html.EscapeString rather than html/template: the template package's
// reflection keeps every exported method in the binary (4 MB of the
// release build; TestReleaseDeps in cmd/fungi bans text/template).
const (
	listHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fungi names</title>
<style>body{font:15px/1.45 system-ui,sans-serif;margin:1rem;max-width:50rem}code{word-break:break-all}li{margin:.3rem 0}</style></head>
<body>
`
	listFoot = "</body></html>\n"
)

func (h *handler) list(w http.ResponseWriter, code int, unknown string, entries []*messages.AccessEntry) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	var b strings.Builder
	b.WriteString(listHead)
	if unknown != "" {
		fmt.Fprintf(&b, "<h1>No service is named <code>%s</code> here</h1>\n", html.EscapeString(unknown))
		b.WriteString("<p>Check the spelling, or attach the service first: <code>fungi access attach SERVICE --peer DEVICE</code>.</p>\n")
	} else {
		b.WriteString("<h1>Fungi names on this node</h1>\n")
	}
	if len(entries) > 0 {
		b.WriteString("<p>These names reach the services this node has attached:</p>\n<ul>")
		for _, e := range entries {
			device := e.Alias
			if device == "" {
				device = e.PeerId
			}
			fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a> — %s on %s</li>\n",
				html.EscapeString(safeHref(e.Url)), html.EscapeString(e.Name), html.EscapeString(e.ServiceId), html.EscapeString(device))
		}
		b.WriteString("</ul>\n")
	} else {
		b.WriteString("<p>No service is attached yet: <code>fungi access attach SERVICE --peer DEVICE</code> gives one a name.</p>\n")
	}
	b.WriteString(listFoot)
	io.WriteString(w, b.String())
}

// safeHref keeps only http(s) links, as html/template would: anything else
// (javascript:, data:) becomes a harmless fragment.
func safeHref(u string) string {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return u
	}
	return "#"
}

// limitListener holds at most cap(slots) connections open at once; the
// next waits in the kernel's backlog until one closes.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
