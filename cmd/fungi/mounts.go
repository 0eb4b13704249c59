package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fungi-go/fungi/internal/config"
)

// mountsCmd edits mounts.allowed: the host folders, besides each service's
// data folder, that manifests may mount.
type mountsCmd struct {
	Allow mountsAllowCmd `cmd:"" help:"Let manifests mount a host folder (later pulls and starts)."`
	Deny  mountsDenyCmd  `cmd:"" help:"Take a host folder out of mounts.allowed."`
	List  mountsListCmd  `cmd:"" aliases:"ls" help:"List the host folders manifests may mount."`
}

type mountsAllowCmd struct {
	jsonFlag
	Folder string `arg:"" type:"path" help:"An absolute host folder."`
}

func (c *mountsAllowCmd) Run(e *env) error {
	// A folder that is not there would be allowed in vain: a manifest's
	// mount of it fails at start, far from this command.
	st, err := os.Stat(c.Folder)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist; create it first (mkdir -p %s), then allow it", c.Folder, shellQuote(c.Folder))
	case err != nil:
		return fmt.Errorf("%s: %w", c.Folder, err)
	case !st.IsDir():
		return fmt.Errorf("%s is a file, not a folder; allow the folder that holds it", c.Folder)
	}
	if _, err := config.Add(e.home.ConfigPath(), "mounts.allowed", filepath.Clean(c.Folder)); err != nil {
		return err
	}
	return e.applyConfig("mounts.allowed", c.JSON)
}

type mountsDenyCmd struct {
	jsonFlag
	Folder string `arg:"" type:"path" help:"A folder in mounts.allowed."`
}

func (c *mountsDenyCmd) Run(e *env) error {
	removed, err := config.Remove(e.home.ConfigPath(), "mounts.allowed", filepath.Clean(c.Folder))
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("%s is not in mounts.allowed; `fungi mounts list` shows the folders", c.Folder)
	}
	return e.applyConfig("mounts.allowed", c.JSON)
}

type mountsListCmd struct{ jsonFlag }

func (c *mountsListCmd) Run(e *env) error {
	return printList(e, "mounts.allowed", c.JSON, "no host folders allowed yet; a service mounts only its data folder (add one with: fungi mounts allow FOLDER)")
}

// printList prints a list key one element a line, or as a JSON array;
// an empty list says so on stderr in words (empty), as other lists do.
func printList(e *env, key string, asJSON bool, empty string) error {
	v, err := config.Get(e.home.ConfigPath(), key)
	if err != nil {
		return err
	}
	if asJSON {
		return printAny(e, v)
	}
	if len(v) == 0 {
		fmt.Fprintln(e.stderr, empty)
		return nil
	}
	for _, s := range v {
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}
