package recipes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/runtimes/manifest"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestBuiltinRecipesRenderToManifests(t *testing.T) {
	c, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]string{
		"filebrowser-docker": {"image=registry.example/fb@" + digest},
		"filebrowser-wasm":   {"url=https://example.org/fb.wasm", "sha256=" + strings.TrimPrefix(digest, "sha256:")},
		"webdav":             {"image=registry.example/webdav@" + digest, "port=8080"},
		"ssh-host":           nil,
	}
	if len(c.List()) != len(sets) {
		t.Fatalf("%d built-in recipes, the test knows %d", len(c.List()), len(sets))
	}
	for _, r := range c.List() {
		raw, err := r.Render(sets[r.Name])
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		if _, err := manifest.Parse(raw); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
	}
}

func TestRenderRefusesWhatCannotRunTheSameEverywhere(t *testing.T) {
	c, _ := Load(context.Background())
	r, _ := c.Get("filebrowser-docker")
	for set, want := range map[string]string{
		"image=registry.example/fb:latest":       "is not pinned by digest",
		"image=a@" + digest + "\n  command: [x]": "a value is at most",
		"image=a@" + digest + "\"":               "a value is at most",
		"port=1":                                 `has no parameter "port"`,
		"image":                                  "write KEY=VALUE",
	} {
		if _, err := r.Render([]string{set}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %q: got %v, want %q", set, err, want)
		}
	}
}

func TestCatalogFromURLIsBounded(t *testing.T) {
	big := strings.Repeat("#", maxRecipeBytes+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(big))
		case "/ok":
			w.Write([]byte("recipes:\n  - name: team-ssh\n    title: Team ssh\n    params: [{key: port, default: \"2222\"}]\n    manifest: |\n      apiVersion: fungi.dev/v1alpha1\n      kind: ServiceManifest\n      metadata: {name: team-ssh}\n      spec:\n        runtime: external\n        source: {host: 127.0.0.1}\n        ports: [{name: ssh, servicePort: {{port}}}]\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if _, err := Load(context.Background(), srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("an oversized catalogue: %v", err)
	}
	if _, err := Load(context.Background(), srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a missing catalogue: %v", err)
	}
	c, err := Load(context.Background(), srv.URL+"/ok")
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Get("team-ssh")
	if err != nil || r.Source != srv.URL+"/ok" {
		t.Fatalf("%v %+v", err, r)
	}
	if _, err := r.Render(nil); err != nil {
		t.Fatal(err)
	}
}
