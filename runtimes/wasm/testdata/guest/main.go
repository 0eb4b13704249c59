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
	"strings"
	"time"
)

func main() {
	// These paths write stdout by hand, to give the host responses that
	// net/http/cgi would never produce.
	switch os.Getenv("PATH_INFO") {
	case "/huge-header":
		// A header line that never ends.
		os.Stdout.WriteString("Content-Type: text/plain\nX-Endless: ")
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = 'a'
		}
		for range 512 {
			if _, err := os.Stdout.Write(chunk); err != nil {
				fmt.Fprintln(os.Stderr, "stdout closed:", err)
				os.Exit(1)
			}
		}
		return
	case "/headers-then-hang":
		os.Stdout.WriteString("Content-Type: text/plain\n\n")
		fmt.Fprintln(os.Stderr, "headers written, now hanging")
		for n := 0; ; n++ {
			if n < 0 {
				fmt.Print(n) // keeps the loop from being optimised away
			}
		}
	case "/args":
		os.Stdout.WriteString("Content-Type: text/plain\n\n")
		os.Stdout.WriteString(strings.Join(os.Args, "\n"))
		return
	}
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
		case "/hog":
			// Takes memory a megabyte at a time until the limit ends it.
			var held [][]byte
			for {
				held = append(held, make([]byte, 1<<20))
			}
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
