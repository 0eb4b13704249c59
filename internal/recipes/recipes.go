// Package recipes is the catalogue of ready-made services: a recipe is a
// service manifest with a few parameters (a name, a port, an image pinned
// by digest) that `fungi service apply --recipe NAME --set KEY=VALUE`
// turns into a manifest. A small catalogue is built into the binary; a
// user or a team adds their own from a folder or a URL (docs/RECIPES.md).
package recipes

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/runtimes/manifest"
)

//go:embed catalog/*.yaml
var builtin embed.FS

// Recipe is one entry of a catalogue.
type Recipe struct {
	// Name is what `--recipe` names: lower-case letters, digits and dashes.
	Name        string  `yaml:"name" json:"name"`
	Title       string  `yaml:"title" json:"title"`
	Description string  `yaml:"description" json:"description"`
	Params      []Param `yaml:"params" json:"params"`
	// Manifest is a fungi service manifest in which {{KEY}} stands for a
	// parameter's value.
	Manifest string `yaml:"manifest" json:"manifest"`
	// Source says where the recipe came from: builtin, a folder or a URL.
	Source string `yaml:"-" json:"source"`
}

// Param is one value a recipe takes.
type Param struct {
	Key      string `yaml:"key" json:"key"`
	Default  string `yaml:"default" json:"default,omitempty"`
	Required bool   `yaml:"required" json:"required,omitempty"`
	Help     string `yaml:"help" json:"help"`
}

const (
	// maxRecipeBytes bounds one recipe file, and a catalogue from a URL.
	maxRecipeBytes = 256 << 10
	// maxRecipes bounds the recipes of one catalogue.
	maxRecipes = 500
	// maxValue bounds one parameter's value.
	maxValue = 1024
	// fetchWithin bounds the download of a catalogue from a URL.
	fetchWithin = 15 * time.Second
)

var (
	namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
	// valuePattern is what a value may hold: it is put into YAML as it is,
	// so nothing that could start a YAML structure or end a quoted string.
	valuePattern = regexp.MustCompile(`^[A-Za-z0-9._:/@+=%?&~-]*$`)
	placeholder  = regexp.MustCompile(`\{\{([a-zA-Z0-9_-]+)\}\}`)
)

// Catalog is the recipes a node's CLI knows, by name.
type Catalog struct {
	byName map[string]*Recipe
}

// Load reads the built-in catalogue, then each source in turn: a folder of
// *.yaml recipe files or an http(s) URL of one file holding a list under
// `recipes:`. A later recipe of the same name replaces an earlier one.
func Load(ctx context.Context, sources ...string) (*Catalog, error) {
	c := &Catalog{byName: map[string]*Recipe{}}
	if err := c.addFS(builtin, "catalog", "builtin"); err != nil {
		return nil, fmt.Errorf("the built-in catalogue: %w", err)
	}
	for _, src := range sources {
		var err error
		switch {
		case src == "":
			continue
		case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
			err = c.addURL(ctx, src)
		default:
			err = c.addFS(os.DirFS(src), ".", src)
		}
		if err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", src, err)
		}
	}
	return c, nil
}

// List returns the recipes sorted by name.
func (c *Catalog) List() []*Recipe {
	out := make([]*Recipe, 0, len(c.byName))
	for _, r := range c.byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns a recipe by name.
func (c *Catalog) Get(name string) (*Recipe, error) {
	r, ok := c.byName[name]
	if !ok {
		var names []string
		for _, r := range c.List() {
			names = append(names, r.Name)
		}
		return nil, fmt.Errorf("no recipe named %q; the catalogue has: %s (`fungi service recipe list`)", name, strings.Join(names, ", "))
	}
	return r, nil
}

func (c *Catalog) addFS(fsys fs.FS, dir, source string) error {
	files, err := fs.Glob(fsys, filepath.ToSlash(filepath.Join(dir, "*.yaml")))
	if err != nil {
		return err
	}
	if len(files) > maxRecipes {
		return fmt.Errorf("%d recipe files, more than the %d a catalogue may hold", len(files), maxRecipes)
	}
	if len(files) == 0 && source != "builtin" {
		return errors.New("no *.yaml recipe files there")
	}
	for _, f := range files {
		data, err := readBounded(fsys, f)
		if err != nil {
			return err
		}
		var r Recipe
		if err := strictDecode(data, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := c.add(&r, source); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

func readBounded(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecipeBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecipeBytes {
		return nil, fmt.Errorf("%s is larger than %d KiB, more than a recipe needs", name, maxRecipeBytes>>10)
	}
	return data, nil
}

// addURL downloads one catalogue file, bounded in size and time.
func (c *Catalog) addURL(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, fetchWithin)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("download (within %s): %w", fetchWithin, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("download: the server answered %s", res.Status)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxRecipeBytes+1))
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if len(data) > maxRecipeBytes {
		return fmt.Errorf("the catalogue is larger than %d KiB; split it or serve a smaller one", maxRecipeBytes>>10)
	}
	var doc struct {
		Recipes []Recipe `yaml:"recipes"`
	}
	if err := strictDecode(data, &doc); err != nil {
		return err
	}
	if len(doc.Recipes) > maxRecipes {
		return fmt.Errorf("%d recipes, more than the %d a catalogue may hold", len(doc.Recipes), maxRecipes)
	}
	for i := range doc.Recipes {
		if err := c.add(&doc.Recipes[i], url); err != nil {
			return fmt.Errorf("recipe %d: %w", i+1, err)
		}
	}
	return nil
}

func strictDecode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// add checks a recipe and adds it to the catalogue.
func (c *Catalog) add(r *Recipe, source string) error {
	if !namePattern.MatchString(r.Name) {
		return fmt.Errorf("name %q: a recipe's name is lower-case letters, digits and dashes", r.Name)
	}
	if strings.TrimSpace(r.Manifest) == "" {
		return fmt.Errorf("recipe %s has no manifest", r.Name)
	}
	known := map[string]bool{}
	for _, p := range r.Params {
		if !placeholder.MatchString("{{" + p.Key + "}}") {
			return fmt.Errorf("recipe %s: parameter key %q is not letters, digits, _ and -", r.Name, p.Key)
		}
		if !valuePattern.MatchString(p.Default) || len(p.Default) > maxValue {
			return fmt.Errorf("recipe %s: the default of %s holds a character a value may not", r.Name, p.Key)
		}
		known[p.Key] = true
	}
	for _, m := range placeholder.FindAllStringSubmatch(r.Manifest, -1) {
		if !known[m[1]] {
			return fmt.Errorf("recipe %s: the manifest uses {{%s}}, which is not among its params", r.Name, m[1])
		}
	}
	r.Source = source
	c.byName[r.Name] = r
	return nil
}

// Render makes the recipe's manifest with the values set (KEY=VALUE), the
// defaults for the rest, and checks it: it must decode as a manifest and
// name its artifact with a digest.
func (r *Recipe) Render(sets []string) ([]byte, error) {
	values := map[string]string{}
	params := map[string]Param{}
	var keys []string
	for _, p := range r.Params {
		values[p.Key] = p.Default
		params[p.Key] = p
		keys = append(keys, p.Key)
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: write KEY=VALUE", kv)
		}
		if _, known := params[k]; !known {
			return nil, fmt.Errorf("--set %s: recipe %s has no parameter %q; it takes: %s", k, r.Name, k, strings.Join(keys, ", "))
		}
		if len(v) > maxValue || !valuePattern.MatchString(v) {
			return nil, fmt.Errorf("--set %s: a value is at most %d characters of letters, digits and ._:/@+=%%?&~-", k, maxValue)
		}
		values[k] = v
	}
	for _, p := range r.Params {
		if p.Required && values[p.Key] == "" {
			return nil, fmt.Errorf("recipe %s needs --set %s=VALUE (%s)", r.Name, p.Key, p.Help)
		}
	}
	out := placeholder.ReplaceAllStringFunc(r.Manifest, func(s string) string {
		return values[placeholder.FindStringSubmatch(s)[1]]
	})
	m, err := manifest.Parse([]byte(out))
	if err != nil {
		return nil, fmt.Errorf("recipe %s makes a manifest fungi refuses: %w", r.Name, err)
	}
	if err := pinned(m); err != nil {
		return nil, fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	return []byte(out), nil
}

// pinned checks that the manifest names its artifact by digest, so a
// recipe runs the same bytes wherever it is applied.
func pinned(m *manifest.Manifest) error {
	src := m.Spec.Source
	switch {
	case m.Spec.Runtime == manifest.RuntimeExternal:
		return nil
	case src.Image != "" && !strings.Contains(src.Image, "@sha256:"):
		return fmt.Errorf("image %s is not pinned by digest; name it as REPO@sha256:DIGEST", src.Image)
	case src.URL != "" && src.SHA256 == "":
		return fmt.Errorf("the module at %s has no sha256; a recipe names the module's digest", src.URL)
	case src.File != "":
		return errors.New("a recipe names its artifact by image digest or URL and sha256, not by a local file")
	}
	return nil
}
