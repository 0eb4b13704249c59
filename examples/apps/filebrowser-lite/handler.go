// Command filebrowser-lite is a small file browser over one data folder. It is
// the example service of Fungi: built for wasip1 it runs as a CGI handler in
// the embedded wasm runtime; built natively it is a plain HTTP server for the
// container runtime. Both builds serve the same handler.
//
// API: GET / (HTML listing), PUT/GET/DELETE /files/<path>, GET /api/list?path=<dir>.
package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// browser serves the files under root.
type browser struct {
	root string
}

func newBrowser() *browser {
	root := os.Getenv("FILEBROWSER_ROOT")
	if root == "" {
		root = "/data"
	}
	return &browser{root: root}
}

type entry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Dir  bool   `json:"dir"`
}

func (b *browser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/":
		b.index(w, r)
	case r.URL.Path == "/api/list":
		b.list(w, r)
	case strings.HasPrefix(r.URL.Path, "/files/"):
		b.file(w, r)
	default:
		http.NotFound(w, r)
	}
}

// local maps a slash path from the URL to a path under root; cleaning it
// first keeps ".." from leaving the data folder.
func (b *browser) local(p string) string {
	clean := path.Clean("/" + p)
	return filepath.Join(b.root, filepath.FromSlash(clean))
}

func (b *browser) entries(dir string) ([]entry, error) {
	des, err := os.ReadDir(b.local(dir))
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(des))
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".upload-") {
			continue // an upload still being written
		}
		e := entry{Name: de.Name(), Dir: de.IsDir()}
		if info, err := de.Info(); err == nil && !de.IsDir() {
			e.Size = info.Size()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (b *browser) index(w http.ResponseWriter, r *http.Request) {
	es, err := b.entries("/")
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html>\n<html><head><title>File Browser Lite</title></head><body>\n<h1>File Browser Lite</h1>\n<ul>\n")
	for _, e := range es {
		name := html.EscapeString(e.Name)
		if e.Dir {
			fmt.Fprintf(w, "<li>%s/</li>\n", name)
			continue
		}
		fmt.Fprintf(w, "<li><a href=\"/files/%s\">%s</a> (%d bytes)</li>\n", name, name, e.Size)
	}
	fmt.Fprint(w, "</ul>\n</body></html>\n")
}

func (b *browser) list(w http.ResponseWriter, r *http.Request) {
	es, err := b.entries(r.URL.Query().Get("path"))
	if os.IsNotExist(err) {
		http.Error(w, "no such folder", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(es)
}

func (b *browser) file(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, "/files/")
	if rel == "" {
		http.Error(w, "a file path is needed after /files/", http.StatusBadRequest)
		return
	}
	p := b.local(rel)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		f, err := os.Open(p)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		defer f.Close()
		if info, err := f.Stat(); err == nil {
			w.Header().Set("Content-Length", fmt.Sprint(info.Size()))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodGet {
			io.Copy(w, f)
		}
	case http.MethodPut:
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// Write beside the target and rename over it: an upload cut short
		// (a client gone, a power cut) never leaves a partial file under the
		// final name, nor truncates the one stored before.
		f, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n, err := io.Copy(f, r.Body)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), p)
		}
		if err != nil {
			os.Remove(f.Name())
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(os.Stderr, "filebrowser-lite: stored %s (%d bytes)\n", rel, n)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "stored %s (%d bytes)\n", rel, n)
	case http.MethodDelete:
		if err := os.Remove(p); err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		fmt.Fprintf(os.Stderr, "filebrowser-lite: deleted %s\n", rel)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
