//go:build !windows

package main

import (
	"io/fs"
	"syscall"
)

// fileOwner is the uid owning a file, to name it when its mode shuts this
// user out.
func fileOwner(info fs.FileInfo) (int, bool) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), true
	}
	return 0, false
}
