//go:build windows

package main

import "io/fs"

// fileOwner is unknown on Windows: the API is a named pipe whose security
// descriptor, not a file mode, admits only its owner.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
