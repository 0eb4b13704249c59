package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fungi-go/fungi/internal/recipes"
	"github.com/fungi-go/fungi/messages"
)

type recipeCmd struct {
	List recipeListCmd `cmd:"" aliases:"ls" help:"List the recipes: the built-in catalogue, FUNGI_DIR/recipes and any --catalog."`
	Show recipeShowCmd `cmd:"" help:"Show a recipe: its parameters and its manifest."`
}

// recipeCatalogFlag adds catalogues to the built-in one.
type recipeCatalogFlag struct {
	Catalog []string `name:"catalog" placeholder:"DIR|URL" help:"Another recipe catalogue: a folder of recipe files or an http(s) URL of one file (repeatable; FUNGI_DIR/recipes is read when it exists)."`
}

// load reads the built-in catalogue, the home's recipes folder when there
// is one, then the --catalog sources.
func (f recipeCatalogFlag) load(e *env) (*recipes.Catalog, error) {
	var sources []string
	if e != nil && e.home != nil {
		dir := filepath.Join(e.home.Dir, "recipes")
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			sources = append(sources, dir)
		}
	}
	return recipes.Load(context.Background(), append(sources, f.Catalog...)...)
}

type recipeListCmd struct {
	recipeCatalogFlag
	jsonFlag
}

// Run lists the recipes.
func (c *recipeListCmd) Run(e *env) error {
	cat, err := c.load(e)
	if err != nil {
		return err
	}
	list := cat.List()
	if c.JSON {
		return printPlainJSON(e, list)
	}
	for _, r := range list {
		fmt.Fprintf(e.stdout, "%-20s %s\n", r.Name, terminalSafe(r.Title))
	}
	return nil
}

type recipeShowCmd struct {
	Name string `arg:"" help:"Recipe name."`
	recipeCatalogFlag
	jsonFlag
}

// Run shows one recipe.
func (c *recipeShowCmd) Run(e *env) error {
	cat, err := c.load(e)
	if err != nil {
		return err
	}
	r, err := cat.Get(c.Name)
	if err != nil {
		return err
	}
	if c.JSON {
		return printPlainJSON(e, r)
	}
	// A catalogue from a folder or URL is someone else's text: made safe
	// for the terminal.
	fmt.Fprintf(e.stdout, "%s: %s\n%s\nsource: %s\nparameters:\n", r.Name, terminalSafe(r.Title), terminalSafe(r.Description), terminalSafe(r.Source))
	for _, p := range r.Params {
		def := "default " + p.Default
		if p.Required {
			def = "required"
		}
		fmt.Fprintf(e.stdout, "  %-10s %s (%s)\n", p.Key, terminalSafe(p.Help), terminalSafe(def))
	}
	fmt.Fprintf(e.stdout, "manifest:\n  %s\n", strings.ReplaceAll(terminalSafe(strings.TrimSpace(r.Manifest)), "\n", "\n  "))
	return nil
}

func printPlainJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

// recipeRequest makes an apply request from a recipe.
func recipeRequest(e *env, name string, sets []string, f recipeCatalogFlag) (*messages.PullServiceRequest, error) {
	cat, err := f.load(e)
	if err != nil {
		return nil, err
	}
	r, err := cat.Get(name)
	if err != nil {
		return nil, err
	}
	raw, err := r.Render(sets)
	if err != nil {
		return nil, err
	}
	return &messages.PullServiceRequest{ManifestYaml: raw}, nil
}
