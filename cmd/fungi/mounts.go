package main

import (
	"fmt"
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
	if _, err := config.Add(e.home, "mounts.allowed", filepath.Clean(c.Folder)); err != nil {
		return err
	}
	return e.applyConfig("mounts.allowed", c.JSON)
}

type mountsDenyCmd struct {
	jsonFlag
	Folder string `arg:"" type:"path" help:"A folder in mounts.allowed."`
}

func (c *mountsDenyCmd) Run(e *env) error {
	removed, err := config.Remove(e.home, "mounts.allowed", filepath.Clean(c.Folder))
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
	return printList(e, "mounts.allowed", c.JSON)
}

// printList prints a list key one element a line, or as a JSON array.
func printList(e *env, key string, asJSON bool) error {
	v, err := config.Get(e.home, key)
	if err != nil {
		return err
	}
	if asJSON {
		return printAny(e, v)
	}
	for _, s := range v {
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}
