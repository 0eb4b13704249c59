//go:build wasip1

// Command guest is a CGI guest for the wasm provider's tests: each path
// exercises one behaviour of the handler.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"strconv"
	"time"
)

func main() {
	cgi.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RawQuery, body)
		case "/env":
			fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
		case "/stderr":
			fmt.Fprintln(os.Stderr, "guest says:", r.URL.Query().Get("msg"))
			fmt.Fprint(w, "logged")
		case "/crash":
			panic("guest crashed on purpose")
		case "/sleep":
			ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
			time.Sleep(time.Duration(ms) * time.Millisecond)
			fmt.Fprint(w, "slept")
		case "/spin":
			ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
			fmt.Fprintln(os.Stderr, "spinning for", ms, "ms")
			end := time.Now().Add(time.Duration(ms) * time.Millisecond)
			n := 0
			for time.Now().Before(end) {
				n++
			}
			fmt.Fprint(w, "spun ", n)
		case "/grow":
			mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
			b := make([]byte, mb<<20)
			for i := range b {
				b[i] = 1
			}
			fmt.Fprint(w, len(b))
		case "/redirect":
			http.Redirect(w, r, "/echo", http.StatusFound)
		case "/file":
			data, err := os.ReadFile("/data/" + r.URL.Query().Get("name"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
}
