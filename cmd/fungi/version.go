package main

import (
	"fmt"
	"runtime"

	"github.com/fungi-go/fungi/internal/version"
)

// versionCmd prints this binary's version, stamped from git at release
// (make dist), and what it was built with. It needs no node folder and no
// daemon.
type versionCmd struct{ jsonFlag }

// versionInfo is `fungi version --json`.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

func (c *versionCmd) Run(e *env) error {
	info := versionInfo{Version: version.Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if c.JSON {
		b, err := jsonMarshalIndent(info)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	fmt.Fprintf(e.stdout, "fungi %s (%s, %s/%s)\n", info.Version, info.GoVersion, info.OS, info.Arch)
	return nil
}
