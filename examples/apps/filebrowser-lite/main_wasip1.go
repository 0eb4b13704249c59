//go:build wasip1

package main

import (
	"fmt"
	"net/http/cgi"
	"os"
)

// In the wasm runtime every request is a fresh instance: one CGI request on
// stdin/stdout, then exit.
func main() {
	if err := cgi.Serve(newBrowser()); err != nil {
		fmt.Fprintln(os.Stderr, "filebrowser-lite:", err)
		os.Exit(1)
	}
}
