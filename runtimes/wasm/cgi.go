package wasm

import (
	"bufio"
	"context"
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
	"github.com/tetratelabs/wazero/experimental"
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
	slots    chan struct{}
	timeout  time.Duration
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("fungi: %s is serving its limit of %d requests at once; try again", h.name, cap(h.slots)), http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	if h.p.memory != nil {
		ctx = experimental.WithMemoryAllocator(ctx, h.p.memory)
	}

	stdout, guestOut := io.Pipe()
	cfg := h.base.WithStdin(r.Body).WithStdout(guestOut)
	for k, v := range cgiEnv(r, h.hostPort) {
		cfg = cfg.WithEnv(k, v)
	}
	done := make(chan error, 1)
	go func() {
		mod, err := h.p.runtime.InstantiateModule(ctx, h.compiled, cfg)
		if mod != nil {
			mod.Close(context.Background())
		}
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
	header, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		stdout.CloseWithError(errAbandoned)
		h.fail(w, <-done, err)
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

// cgiEnv is the request's CGI meta-variables (RFC 3875 section 4.1), plus
// REQUEST_URI, which Go's and most other CGI libraries read.
func cgiEnv(r *http.Request, port int) map[string]string {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
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
		"QUERY_STRING":      r.URL.RawQuery,
		"REMOTE_ADDR":       remote,
		"REMOTE_HOST":       remote,
		"REMOTE_PORT":       remotePort,
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
