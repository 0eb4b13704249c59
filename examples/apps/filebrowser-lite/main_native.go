//go:build !wasip1

package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("listen", ":80", "address to serve HTTP on")
	flag.Parse()
	b := newBrowser()
	log.Printf("filebrowser-lite: serving %s on %s", b.root, *addr)
	log.Fatal(http.ListenAndServe(*addr, b))
}
