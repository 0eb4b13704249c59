package wasm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// handler serves one wasm service as CGI/1.1 (RFC 3875), the way WAGI does:
// every request instantiates the compiled module afresh, with the request's
// meta-variables as environment, its body on stdin, and the response read
// from stdout.
type handler struct {
	p        *Provider
	name     string
	compiled wazero.CompiledModule
	base     wazero.ModuleConfig
	hostPort int
	log      io.Writer
	limiter  *requestLimiter
	timeout  time.Duration
	// wagiArgs builds each request's argv from its path and query as WAGI
	// does; off when the manifest sets command, which then is the argv.
	wagiArgs bool
	// routes are the named entrypoints the module's _routes declared;
	// none means every request runs _start.
	routes routeTable
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, release, ok := h.p.admit(w, r, h.name, h.limiter, h.timeout)
	if !ok {
		return
	}
	defer release()

	stdout, guestOut := io.Pipe()
	cfg := h.base.WithStdin(r.Body).WithStdout(guestOut)
	if h.wagiArgs {
		cfg = cfg.WithArgs(wagiArgs(r)...)
	}
	env := cgiEnv(r, h.hostPort)
	rt := h.routes.pick(r.URL.Path)
	rt.setEnv(env, r.URL.Path)
	for k, v := range env {
		cfg = cfg.WithEnv(k, v)
	}
	done := make(chan error, 1)
	go func() {
		err := callEntry(ctx, h.p.runtime, h.compiled, cfg, rt.entry)
		guestOut.CloseWithError(guestEnd(err))
		done <- err
	}()
	h.respond(w, r, stdout, done)
}

// errAbandoned stops a guest that is still writing a response nobody reads.
var errAbandoned = errors.New("fungi: response abandoned")

// guestEnd is what the response reader sees after the guest's last byte.
func guestEnd(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

func (h *handler) respond(w http.ResponseWriter, r *http.Request, stdout *io.PipeReader, done chan error) {
	defer stdout.Close()
	br := bufio.NewReaderSize(stdout, 16<<10)
	header, err := readCGIHeader(br, func(line string) {
		fmt.Fprintf(h.log, "fungi: %s wrote a CGI header line that is not `Name: value`; it was left out: %q\n", h.name, line)
	})
	if err != nil {
		stdout.CloseWithError(errAbandoned)
		gerr := <-done
		if errors.Is(err, errHeaderTooLarge) {
			fmt.Fprintf(h.log, "fungi: %s %s: %v; answered 502\n", r.Method, r.URL.Path, err)
			http.Error(w, "fungi: the service sent a malformed response (its CGI header block is too large)", http.StatusBadGateway)
			return
		}
		h.fail(w, gerr, err)
		return
	}
	status := http.StatusOK
	if s := header.Get("Status"); s != "" {
		code, err := strconv.Atoi(strings.Fields(s + " ")[0])
		if err != nil || code < 100 || code > 999 {
			fmt.Fprintf(h.log, "fungi: %s wrote a bad CGI Status header %q\n", h.name, s)
			http.Error(w, "fungi: the service sent a malformed response", http.StatusBadGateway)
			stdout.CloseWithError(errAbandoned)
			<-done
			return
		}
		status = code
		header.Del("Status")
	} else if header.Get("Location") != "" {
		status = http.StatusFound
	}
	// The status is held until the first body byte or the guest's end: a
	// guest that writes its headers and then times out or traps still gets
	// an honest 504 or 502 instead of an empty reply under a 200.
	if _, err := br.Peek(1); err != nil && err != io.EOF {
		stdout.CloseWithError(errAbandoned)
		h.fail(w, <-done, err)
		return
	}
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	if _, err := io.Copy(w, br); err != nil {
		stdout.CloseWithError(errAbandoned)
		gerr := <-done
		fmt.Fprintf(h.log, "fungi: %s %s: response cut short: %v\n", r.Method, r.URL.Path, describe(gerr, err))
		// Headers are gone already: cutting the connection is the only way
		// left to tell the client the body is incomplete.
		panic(http.ErrAbortHandler)
	}
	<-done
}

// Limits on the CGI header block a guest writes before its body. The host
// holds the block in memory, so a guest must not be able to make it grow
// without end; real responses use a few hundred bytes.
const (
	maxCGIHeaderBytes = 64 << 10
	maxCGIHeaderLine  = 8 << 10
	maxCGIHeaderLines = 256
)

// errHeaderTooLarge is a header block past one of the limits above.
var errHeaderTooLarge = errors.New("CGI header block too large")

// readCGIHeader reads the guest's header lines up to the blank line that
// ends them. Lines end in LF or CRLF; a name and its value are split at the
// first colon and trimmed, so "content-type:text/plain" (as WAGI's own
// examples write it) is accepted. Lines without a colon, or with a name
// that is not an HTTP token, are reported to badLine and left out, as WAGI
// does.
func readCGIHeader(br *bufio.Reader, badLine func(string)) (http.Header, error) {
	header := http.Header{}
	total := 0
	for lines := 0; ; lines++ {
		if lines == maxCGIHeaderLines {
			return nil, fmt.Errorf("%w: more than %d lines", errHeaderTooLarge, maxCGIHeaderLines)
		}
		line, err := readHeaderLine(br)
		total += len(line)
		if total > maxCGIHeaderBytes {
			return nil, fmt.Errorf("%w: more than %d KiB", errHeaderTooLarge, maxCGIHeaderBytes>>10)
		}
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return header, nil
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || !isToken(name) {
			badLine(line)
			continue
		}
		header.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
}

// readHeaderLine reads one line of at most maxCGIHeaderLine bytes without
// ever buffering more.
func readHeaderLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > maxCGIHeaderLine {
			return "", fmt.Errorf("%w: a line longer than %d KiB", errHeaderTooLarge, maxCGIHeaderLine>>10)
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return "", errors.New("the output ended inside the CGI header block")
		default:
			return "", err
		}
	}
}

// isToken reports whether s is an HTTP field name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// fail answers a request whose guest ended before it wrote a response.
func (h *handler) fail(w http.ResponseWriter, guestErr, readErr error) {
	var exit *sys.ExitError
	switch {
	case errors.As(guestErr, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		fmt.Fprintf(h.log, "fungi: request timed out after %s\n", h.timeout)
		http.Error(w, fmt.Sprintf("fungi: %s did not answer within %s", h.name, h.timeout), http.StatusGatewayTimeout)
	case errors.As(guestErr, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		// The client went away; nobody is left to answer.
	default:
		fmt.Fprintf(h.log, "fungi: request failed: %v\n", describe(guestErr, readErr))
		http.Error(w, fmt.Sprintf("fungi: %s failed while handling the request (see fungi service logs %s)", h.name, h.name), http.StatusBadGateway)
	}
}

func describe(guestErr, readErr error) error {
	var exit *sys.ExitError
	switch {
	case guestErr == nil:
		return fmt.Errorf("the guest exited without a complete CGI response (%v)", readErr)
	case errors.As(guestErr, &exit):
		return fmt.Errorf("the guest exited with code %d", exit.ExitCode())
	default:
		return fmt.Errorf("the guest trapped: %v", guestErr)
	}
}

// wagiArgs is the guest's command line for r as WAGI (and Spin's WAGI
// executor) build it: argv[0] is the request path, then the query string
// split at every '&', undecoded. RFC 3875 section 4.4 would pass search
// words only for a query without an unencoded '='; WAGI passes every part,
// and modules written for WAGI read them that way (Spin's test expects
// ["/test", "abc=def"] for /test?abc=def).
func wagiArgs(r *http.Request) []string {
	args := []string{r.URL.EscapedPath()}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		args = append(args, strings.Split(r.URL.RawQuery, "&")...)
	}
	return args
}

// cgiEnv is the request's CGI meta-variables (RFC 3875 section 4.1), plus
// REQUEST_URI, which Go's and most other CGI libraries read, and the
// variables WAGI adds. A fungi wasm service answers every path on its port,
// which in WAGI's terms is the route "/...": SCRIPT_NAME is empty and the
// whole path is PATH_INFO.
func cgiEnv(r *http.Request, port int) map[string]string {
	host, hostPort, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, hostPort = strings.Trim(r.Host, "[]"), strconv.Itoa(port)
	}
	if host == "" {
		host = "127.0.0.1" // an HTTP/1.0 request without Host: the address the service listens on
	}
	remote, remotePort, _ := net.SplitHostPort(r.RemoteAddr)
	env := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "fungi",
		"SERVER_PROTOCOL":   r.Proto,
		"SERVER_NAME":       host,
		"SERVER_PORT":       strconv.Itoa(port),
		"REQUEST_METHOD":    r.Method,
		"REQUEST_URI":       r.URL.RequestURI(),
		"SCRIPT_NAME":       "",
		"PATH_INFO":         r.URL.Path,
		"PATH_TRANSLATED":   r.URL.Path,
		"QUERY_STRING":      r.URL.RawQuery,
		"REMOTE_ADDR":       remote,
		"REMOTE_HOST":       remote,
		"REMOTE_PORT":       remotePort,
		"AUTH_TYPE":         "",
		"REMOTE_USER":       "",
		"X_MATCHED_ROUTE":   "/...",
		"X_RAW_PATH_INFO":   r.URL.EscapedPath(),
		"X_FULL_URL":        "http://" + net.JoinHostPort(host, hostPort) + r.URL.RequestURI(),
	}
	if r.ContentLength >= 0 && (r.ContentLength > 0 || r.Body != http.NoBody) {
		env["CONTENT_LENGTH"] = strconv.FormatInt(r.ContentLength, 10)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env["CONTENT_TYPE"] = ct
	}
	for k, vs := range r.Header {
		k = strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if k == "PROXY" || k == "CONTENT_TYPE" || k == "CONTENT_LENGTH" {
			continue // httpoxy, and the two that have their own variables
		}
		env["HTTP_"+k] = strings.Join(vs, ", ")
	}
	if r.Host != "" {
		env["HTTP_HOST"] = r.Host
	}
	return env
}
