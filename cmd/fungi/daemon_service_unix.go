//go:build !windows

package main

import "context"

// underServiceManager is false off Windows: systemd and launchd run the
// daemon as a plain process and stop it with SIGTERM.
func underServiceManager(func(context.Context) error) (bool, error) { return false, nil }
